"""text: English plurals, singulars, articles, ordinals and numbers in words."""


def compute(task):
    import inflect  # loaded where English text is generated

    engine = inflect.engine()
    words = task["words"]
    return {
        "plural": {word: engine.plural(word) for word in words},
        "singular": {engine.plural(word): engine.singular_noun(engine.plural(word)) for word in words},
        "article": [engine.a(word) for word in task["article_words"]],
        "ordinals": [engine.ordinal(n) for n in task["numbers"]],
        "in_words": [engine.number_to_words(n) for n in task["numbers"]],
        "grouped": engine.number_to_words(task["phone"], group=1),
        "list": engine.join(task["article_words"], final_sep=""),
        "counted": [f"{n} {engine.plural('child', n)}" for n in (0, 1, 2)],
    }
