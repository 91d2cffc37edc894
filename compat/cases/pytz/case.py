"""dates: localize naive times with pytz (zone files are package data), normalize across DST, list a country's zones."""

from datetime import datetime, timedelta


def compute(task):
    import pytz  # loaded where the first zone is needed

    out = {}
    for name in task["zones"]:
        zone = pytz.timezone(name)
        local = zone.localize(datetime(*task["naive"]), is_dst=None)
        moved = zone.normalize(local + timedelta(days=task["days"]))
        out[name] = {"local": local.isoformat(), "utc": local.astimezone(pytz.utc).isoformat(), "moved": moved.isoformat(), "tzname": local.tzname()}
    try:
        pytz.timezone("America/New_York").localize(datetime(2024, 3, 10, 2, 30), is_dst=None)
        gap = "no error"
    except pytz.NonExistentTimeError as error:
        gap = f"NonExistentTimeError: {error}"
    return {
        "zones": out,
        "gap": gap,
        "country_zones": pytz.country_timezones[task["country"]],
        "country_name": pytz.country_names[task["country"].lower()],
    }
