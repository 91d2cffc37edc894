"""dates: wall-clock times across DST changes in several zones, from the IANA data of the tzdata package."""

from datetime import datetime, timedelta, timezone


def compute(task):
    import zoneinfo  # stdlib, imported where time zones are first needed

    # Only the pinned tzdata package, never the host's /usr/share/zoneinfo: the same answer everywhere.
    zoneinfo.reset_tzpath(to=[])
    instant = datetime.fromisoformat(task["instant"]).astimezone(timezone.utc)
    conversions = {}
    for name in task["zones"]:
        zone = zoneinfo.ZoneInfo(name)
        local = instant.astimezone(zone)
        later = (instant + timedelta(days=task["days_later"])).astimezone(zone)
        conversions[name] = {
            "local": local.isoformat(),
            "abbreviation": local.tzname(),
            "later": later.isoformat(),
            "offset_change_minutes": (later.utcoffset() - local.utcoffset()) // timedelta(minutes=1),
        }
    # A nonexistent wall time (spring forward) and an ambiguous one (fall back), resolved by `fold`.
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    gap = datetime(2024, 3, 31, 2, 30, tzinfo=paris)
    ambiguous = [datetime(2024, 10, 27, 2, 30, fold=fold, tzinfo=paris).astimezone(timezone.utc).isoformat() for fold in (0, 1)]
    return {
        "conversions": conversions,
        "gap_utc": gap.astimezone(timezone.utc).isoformat(),
        "ambiguous_utc": ambiguous,
        "zones_available": len(zoneinfo.available_timezones()),
    }
