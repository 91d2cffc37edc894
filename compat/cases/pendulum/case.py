"""dates: DST-aware arithmetic, intervals, durations and localized differences with pendulum."""


def compute(task):
    import pendulum  # loaded where dates are first handled

    start = pendulum.datetime(*task["start"], tz=task["zone"])
    plus = start.add(hours=task["hours"])
    interval = pendulum.interval(start, start.add(months=2, days=3))
    duration = pendulum.duration(seconds=task["seconds"])
    parsed = pendulum.parse(task["text"])
    return {
        "start": start.isoformat(),
        "plus_hours": plus.isoformat(),
        "offset_hours": [start.offset_hours, plus.offset_hours],
        "interval_days": interval.in_days(),
        "interval_words": interval.in_words(locale="en"),
        "weekdays": sum(1 for day in interval.range("days") if day.day_of_week < 5),
        "duration": duration.in_words(locale="de"),
        "parsed": [parsed.isoformat(), parsed.timezone_name],
        "diff": {locale: plus.diff_for_humans(start, locale=locale) for locale in ("en", "fr", "es")},
        "start_of_week": start.start_of("week").isoformat(),
        "formatted": start.format("dddd Do MMMM YYYY HH:mm zz", locale="fr"),
    }
