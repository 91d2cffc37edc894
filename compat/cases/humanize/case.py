"""text: human-readable sizes, numbers, durations and ordinals, in English and with a French and German locale."""

import datetime as dt


def compute(task):
    import humanize  # loaded where figures are shown to people (its translations are .mo files)

    def describe():
        return {
            "sizes": [humanize.naturalsize(n) for n in task["bytes"]],
            "binary": [humanize.naturalsize(n, binary=True) for n in task["bytes"]],
            "intcomma": [humanize.intcomma(n) for n in task["numbers"]],
            "intword": [humanize.intword(n) for n in task["numbers"]],
            "ordinal": [humanize.ordinal(n) for n in (1, 2, 3, 11, 22, 103)],
            "delta": [humanize.naturaldelta(dt.timedelta(seconds=s)) for s in task["seconds"]],
            "precise": humanize.precisedelta(dt.timedelta(seconds=task["seconds"][-1]), minimum_unit="seconds"),
            "apnumber": [humanize.apnumber(n) for n in range(0, 11, 3)],
            "fractional": humanize.fractional(1.3333333),
            "scientific": humanize.scientific(0.000123456, precision=3),
        }

    results = {"en": describe()}
    for locale in task["locales"]:
        humanize.i18n.activate(locale)
        try:
            results[locale] = describe()
        finally:
            humanize.i18n.deactivate()
    return results
