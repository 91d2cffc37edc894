"""dates: parse free-form dates, relativedelta arithmetic, recurrence rules, and a zone from dateutil's bundled tz data."""

from dateutil import parser, relativedelta, rrule


def compute(task):
    # The zone database dateutil ships as a tarball (package data), loaded only when a zone is asked for.
    from dateutil.zoneinfo import get_zonefile_instance

    parsed = [parser.parse(text, dayfirst=task["dayfirst"]).isoformat() for text in task["dates"]]
    start = parser.isoparse(task["start"])
    shifted = start + relativedelta.relativedelta(months=+1, weekday=relativedelta.FR(-1), hour=17)
    age = relativedelta.relativedelta(parser.isoparse(task["end"]), start)
    rule = rrule.rrulestr(task["rule"], dtstart=start)
    zone = get_zonefile_instance().get(task["zone"])
    in_zone = [start.replace(tzinfo=zone).isoformat(), (start + relativedelta.relativedelta(months=6)).replace(tzinfo=zone).isoformat()]
    return {
        "parsed": parsed,
        "last_friday_next_month": shifted.isoformat(),
        "difference": [age.years, age.months, age.days],
        "occurrences": [when.isoformat() for when in rule[: task["count"]]],
        "in_zone": in_zone,
    }
