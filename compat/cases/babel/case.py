"""dates: locale-aware numbers, currencies, dates, plural rules and names from CLDR data (per-locale data files)."""

from datetime import date, datetime

from babel import Locale


def compute(task):
    # Formatting functions live in submodules that real code imports where it formats.
    from babel.dates import format_date, format_datetime, format_timedelta
    from babel.numbers import format_currency, format_decimal, format_percent

    when = datetime(*task["when"])
    out = {}
    for code in task["locales"]:
        locale = Locale.parse(code)
        out[code] = {
            "name": locale.display_name,
            "english_name": locale.english_name,
            "currency": format_currency(task["amount"], "EUR", locale=code),
            "yen": format_currency(task["amount"], "JPY", locale=code),
            "decimal": format_decimal(task["number"], locale=code),
            "percent": format_percent(0.256, locale=code),
            "date_full": format_date(date(*task["when"][:3]), format="full", locale=code),
            "datetime_medium": format_datetime(when, format="medium", locale=code, tzinfo=None),
            "timedelta": format_timedelta(task["seconds"], locale=code),
            "plural": [locale.plural_form(n) for n in (0, 1, 2, 5, 21)],
            "first_weekday": locale.first_week_day,
            "month_names": [locale.months["format"]["wide"][m] for m in (1, 8)],
            "territory_fr": locale.territories.get("FR"),
        }
    return out
