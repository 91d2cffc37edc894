"""fake data: seeded, reproducible people, addresses, companies and texts in several locales (providers load by locale)."""

from datetime import date


def compute(task):
    from faker import Faker  # loaded where test data is generated; locale providers are imported by name

    fake = Faker(task["locales"])
    Faker.seed(task["seed"])
    out = {}
    for locale in task["locales"]:
        generator = fake[locale]
        out[locale] = {
            "names": [generator.name() for _ in range(3)],
            "address": generator.address(),
            "company": generator.company(),
            "phone": generator.phone_number(),
            "iban": generator.iban(),
            "date": generator.date_between_dates(date(2000, 1, 1), date(2010, 12, 31)).isoformat(),
            "sentence": generator.sentence(nb_words=8),
            "email": generator.email(),
        }
    out["uuid"] = str(fake.uuid4())
    out["profile_keys"] = sorted(fake["en_US"].simple_profile())
    return out
