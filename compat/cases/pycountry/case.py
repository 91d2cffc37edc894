"""web: ISO 3166 countries and subdivisions, ISO 4217 currencies, ISO 639 languages, with German names from gettext catalogs."""

import pycountry


def compute(task):
    import gettext  # stdlib: pycountry ships translations as .mo catalogs

    german = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["de"])
    out = {}
    for code in task["countries"]:
        country = pycountry.countries.get(alpha_2=code)
        out[code] = {
            "name": country.name,
            "alpha_3": country.alpha_3,
            "numeric": country.numeric,
            "german": german.gettext(country.name),
            "subdivisions": len(pycountry.subdivisions.get(country_code=code) or []),
        }
    return {
        "countries": out,
        "fuzzy": [c.alpha_2 for c in pycountry.countries.search_fuzzy(task["fuzzy"])][:3],
        "currencies": {code: pycountry.currencies.get(alpha_3=code).name for code in task["currencies"]},
        "languages": {code: pycountry.languages.get(alpha_2=code).name for code in task["languages"]},
        "subdivision": pycountry.subdivisions.get(code=task["subdivision"]).name,
        "country_count": len(pycountry.countries),
    }
