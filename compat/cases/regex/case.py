"""text: Unicode-property patterns, fuzzy matching and overlapping matches with the regex module."""


def compute(task):
    import regex  # loaded where the patterns are compiled

    text = task["text"]
    return {
        "words": regex.findall(r"\p{L}+", text),
        "greek": regex.findall(r"\p{Script=Greek}+", text),
        "fuzzy": bool(regex.fullmatch(r"(?:colour){e<=1}", "color")),
        "overlapping": regex.findall(r"\w\w", "abcd", overlapped=True),
    }
