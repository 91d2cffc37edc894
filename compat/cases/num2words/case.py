"""text: numbers, ordinals, years and amounts in words in several languages."""


def compute(task):
    from num2words import num2words  # loaded where a cheque is printed

    out = {}
    for lang in task["languages"]:
        out[lang] = {
            "cardinal": [num2words(n, lang=lang) for n in task["numbers"]],
            "ordinal": num2words(task["ordinal"], lang=lang, to="ordinal"),
            "currency": num2words(task["amount"], lang=lang, to="currency", currency="EUR"),
        }
    out["year"] = num2words(task["year"], to="year")
    out["decimal"] = num2words(task["decimal"])
    return out
