"""dates: public holidays of several countries and subdivisions, with localized names (country modules load by name)."""

from datetime import date


def compute(task):
    import holidays  # loaded where a calendar is first asked for

    out = {}
    for spec in task["calendars"]:
        calendar = holidays.country_holidays(spec["country"], subdiv=spec.get("subdiv"), years=task["year"], language=spec.get("language"))
        key = "-".join(filter(None, (spec["country"], spec.get("subdiv"), spec.get("language"))))
        out[key] = sorted((day.isoformat(), name) for day, name in calendar.items())
    us = holidays.country_holidays("US", years=task["year"])
    return {
        "calendars": out,
        "is_holiday": [date.fromisoformat(day) in us for day in task["check"]],
        "financial_nyse": len(holidays.financial_holidays("NYSE", years=task["year"])),
    }
