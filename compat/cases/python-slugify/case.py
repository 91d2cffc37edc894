"""text: URL slugs from titles in several scripts, with stopwords, length limits and custom separators."""


def compute(task):
    from slugify import slugify  # loaded where the first slug is made (pulls text-unidecode's tables)

    return {
        "plain": [slugify(title) for title in task["titles"]],
        "short": [slugify(title, max_length=20, word_boundary=True) for title in task["titles"]],
        "no_stopwords": [slugify(title, stopwords=task["stopwords"], separator="_") for title in task["titles"]],
        "unicode_kept": [slugify(title, allow_unicode=True) for title in task["titles"]],
        "replacements": slugify("10 | 20 % off & more", replacements=[["|", "or"], ["%", "percent"], ["&", "and"]]),
    }
