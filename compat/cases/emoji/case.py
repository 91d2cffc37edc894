"""text: emoji shortcodes both ways, in English aliases and other languages, counting and listing emoji in text."""

import emoji


def compute(task):
    from importlib.metadata import version  # stdlib: report the emoji data version used

    text = task["text"]
    return {
        "emojized": emoji.emojize(task["shortcodes"], language="alias"),
        "emojized_es": emoji.emojize(task["shortcodes_es"], language="es"),
        "demojized": emoji.demojize(text),
        "demojized_de": emoji.demojize(text, language="de"),
        "count": emoji.emoji_count(text),
        "distinct": sorted(emoji.distinct_emoji_list(text)),
        "found": [(match["emoji"], match["match_start"]) for match in emoji.emoji_list(text)],
        "replaced": emoji.replace_emoji(text, replace="<e>"),
        "is_emoji": [emoji.is_emoji(char) for char in ("😀", "a", "🇫🇷")],
        "package_version": version("emoji"),
    }
