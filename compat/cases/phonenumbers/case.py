"""web: parse, validate and format international phone numbers (region metadata loads per country on demand)."""


def compute(task):
    import phonenumbers  # loaded where the first number is parsed

    out = []
    for text, region in task["numbers"]:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as error:
            out.append({"input": text, "error": str(error)})
            continue
        out.append({
            "input": text,
            "valid": phonenumbers.is_valid_number(number),
            "region": phonenumbers.region_code_for_number(number),
            "type": phonenumbers.number_type(number),
            "e164": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            "international": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
            "national": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        })
    found = [phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164) for m in phonenumbers.PhoneNumberMatcher(task["text"], "US")]
    return {"numbers": out, "found_in_text": found, "example_fr": phonenumbers.format_number(phonenumbers.example_number("FR"), phonenumbers.PhoneNumberFormat.E164)}
