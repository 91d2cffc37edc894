"""JSON from a guest, read as the host must: strict, and bounded before anything big is built from it.

Whatever a guest returns, sends or logs reaches results, events and other agents only through `loads`:
no NaN or Infinity, no number the host cannot carry, no more bytes, values or nesting than the agent's limits.
"""

import json
import re
import sys
from typing import Any, NoReturn


class Refused(ValueError):
    """Guest JSON the host does not take. The message says why; `limit` names the limit it broke ("bytes" or
    "depth"), and `undecodable` is set when json itself could not nest that deep."""

    def __init__(self, message: str, *, limit: str | None = None, undecodable: bool = False) -> None:
        self.limit = limit
        self.undecodable = undecodable
        super().__init__(message)

    def hint(self, size_setting: str) -> str:
        """Name the agent's setting that refused it (`size_setting` for its bytes), as a message ends with it."""
        setting = {"bytes": size_setting, "items": "json_items", "depth": "json_depth"}.get(self.limit or "")
        return f" ([limits] {setting} in agent.toml)" if setting else ""


# Shape of JSON text: escapes removed, then each string blanked (strings may hold brackets, commas, quotes).
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_INNERMOST = re.compile(r"[\[{][^\[\]{}]*[\]}]")
# What a number that may not fit a float has: a positive exponent of 3 digits or more, or else (an exponent of at most
# 99) 210 digits or more before its point, as 210 + 99 digits reach 1e309.
_BIG_EXPONENT = re.compile(r"[eE]\+?\d{3}")
_DIGITS_AS_ZERO = str.maketrans("123456789", "000000000")
_LONG_RUN = "0" * 210


def loads(text: str, *, max_bytes: int, max_depth: int, max_items: int) -> Any:
    """Decode the guest's `text` strictly; raise Refused, saying why, if it is larger, deeper or looser than allowed.

    Bytes and values are counted before anything is decoded: decoding holds the host's GIL, and its time and
    memory grow with the values it builds (~0.25 s and ~80 MB per million), so they are bounded first.
    """
    size = utf8_size(text)
    if size > max_bytes:
        raise Refused(f"{size} bytes, more than the limit of {max_bytes}", limit="bytes")
    shape = _ESCAPE.sub("", text)
    if shape.count('"') % 2:
        raise Refused("not strict JSON: a string is not closed")
    shape = _STRING.sub('""', shape)
    if (values := shape.count(",") + shape.count("[") + shape.count("{") + 1) > max_items:
        raise Refused(f"about {values} values, more than the limit of {max_items}", limit="items")
    try:
        # Checking every float costs a Python call per number (2.5x the decoding of a float matrix): only text with a
        # number that may not fit one is decoded through the check.
        value = json.loads(text, parse_constant=no_constant, parse_float=_finite_float if _may_overflow(shape) else float)
    except RecursionError as error:
        raise Refused(str(error), limit="depth", undecodable=True) from None
    except ValueError as error:
        if "integer string conversion" in str(error):
            raise Refused(f"an integer of more than {sys.get_int_max_str_digits()} digits, which JSON readers cannot carry") from None
        raise Refused(f"not strict JSON: {error}") from None
    if nesting(shape, max_depth) > max_depth:
        raise Refused(f"nested more than {max_depth} deep, the limit", limit="depth")
    return value


def _may_overflow(shape: str) -> bool:
    """Whether JSON text whose strings are blanked has a number too large for a float, or near enough to check."""
    return _BIG_EXPONENT.search(shape) is not None or _LONG_RUN in shape.translate(_DIGITS_AS_ZERO)


def utf8_size(text: str) -> int:
    """The UTF-8 size of `text`, without copying it when it is ASCII (as json.dumps writes it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def nesting(shape: str, limit: int) -> int:
    """How deep arrays and objects nest in JSON text whose strings are blanked, counted up to `limit + 1`.

    Each pass of a C-speed regex folds the innermost containers, so the cost is one pass per level, and no
    Python object is built per container (a `[[]] * 6_000_000` result costs two passes).
    """
    for depth in range(limit + 1):
        shape, folded = _INNERMOST.subn("0", shape)
        if not folded:
            return depth
    return limit + 1


def no_constant(name: str) -> NoReturn:
    """json.loads's parse_constant for strict JSON: refuse NaN, Infinity and -Infinity."""
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a JSON number")
    return value
