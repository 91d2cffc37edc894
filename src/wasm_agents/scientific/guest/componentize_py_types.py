"""The error type of componentize-py's bindings, for the guest modules of the sandbox in the scientific runtime."""


class Err(Exception):
    """The err case of a WIT result: `value` is what it carries."""

    def __init__(self, value: object) -> None:
        super().__init__(value)
        self.value = value
