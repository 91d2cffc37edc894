"""dates: time-zone conversion, shifting, spans, humanized differences and localized formatting with arrow."""

import arrow


def compute(task):
    from email.utils import format_datetime  # stdlib: the same instant as an RFC 2822 header

    start = arrow.get(task["start"])
    local = start.to(task["zone"])
    later = local.shift(weeks=+2, days=-1, hours=+5)
    floor, ceil = local.span("week")
    return {
        "local": local.isoformat(),
        "later": later.isoformat(),
        "week": [floor.isoformat(), ceil.isoformat()],
        "humanized": {locale: start.humanize(later, locale=locale) for locale in task["locales"]},
        "formatted": {locale: local.format("dddd D MMMM YYYY, HH:mm ZZ", locale=locale) for locale in task["locales"]},
        "parsed": arrow.get(task["text"], task["pattern"]).isoformat(),
        "range": [day.format("YYYY-MM-DD") for day in arrow.Arrow.range("day", start, start.shift(days=4))],
        "rfc2822": format_datetime(local.datetime),
        "dehumanized": start.dehumanize("in 3 days").isoformat(),
    }
