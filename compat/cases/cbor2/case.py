"""data formats: canonical CBOR of dates, decimals, fractions, bytes and nested data; decode it back."""

from datetime import datetime
from decimal import Decimal
from fractions import Fraction


def compute(task):
    import cbor2  # the CBOR codec is loaded where a message is encoded

    value = {
        "when": datetime.fromisoformat(task["when"]),
        "price": Decimal(task["price"]),
        "ratio": Fraction(*task["ratio"]),
        "payload": task["text"].encode("utf-8"),
        "nested": task["nested"],
    }
    encoded = cbor2.dumps(value, canonical=True, datetime_as_timestamp=False)
    decoded = cbor2.loads(encoded)
    return {
        "hex": encoded.hex(),
        "round_trip": decoded == value,
        "decoded_types": {key: type(item).__name__ for key, item in sorted(decoded.items())},
        "tagged": cbor2.loads(bytes.fromhex(task["tagged_hex"])).isoformat(),
    }
