"""text: ASCII transliteration of text in many scripts (per-block tables load on demand)."""


def compute(task):
    from unidecode import unidecode, unidecode_expect_nonascii  # loaded where text is first normalised

    return {
        "ascii": {label: unidecode(text) for label, text in task["texts"].items()},
        "expect_nonascii": unidecode_expect_nonascii(task["texts"]["german"]),
        "replace_errors": unidecode("\U0001f600 smile \ue000", errors="replace", replace_str="?"),
    }
