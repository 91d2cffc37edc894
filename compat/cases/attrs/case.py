"""validation: attrs classes with validators, converters, frozen instances, evolve and asdict."""

import attrs


@attrs.frozen
class Money:
    amount: int = attrs.field(validator=attrs.validators.ge(0))
    currency: str = attrs.field(converter=str.upper, validator=attrs.validators.in_({"EUR", "USD", "JPY"}))


@attrs.define
class Order:
    id: int = attrs.field(converter=int)
    lines: list[Money] = attrs.field(factory=list)
    note: str | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.max_len(20)))

    def total(self, currency):
        return sum(line.amount for line in self.lines if line.currency == currency)


def compute(task):
    from attrs import exceptions  # imported where a frozen instance's error is handled

    order = Order(task["id"], [Money(amount, currency) for amount, currency in task["lines"]], note=task["note"])
    errors = []
    for bad in task["bad"]:
        try:
            Money(*bad)
        except (ValueError, TypeError) as error:
            errors.append(type(error).__name__)
    try:
        order.lines[0].amount = 5
        frozen = "mutated"
    except exceptions.FrozenInstanceError as error:
        frozen = type(error).__name__
    return {
        "order": attrs.asdict(order),
        "total_eur": order.total("EUR"),
        "evolved": attrs.asdict(attrs.evolve(order.lines[0], amount=999)),
        "errors": errors,
        "frozen": frozen,
        "fields": [field.name for field in attrs.fields(Order)],
        "repr": repr(order.lines[0]),
        "equal": Money(1, "eur") == Money(1, "EUR"),
    }
