"""validation: parse and validate nested models with type coercion and collect errors with pydantic."""

from datetime import date


def compute(task):
    from pydantic import BaseModel, Field, ValidationError  # loaded where input is validated

    class Address(BaseModel):
        city: str
        zip: str = Field(pattern=r"^\d{5}$")

    class User(BaseModel):
        name: str = Field(min_length=2)
        age: int = Field(ge=0)
        born: date
        address: Address

    user = User.model_validate(task["good"])
    try:
        User.model_validate(task["bad"])
        errors = []
    except ValidationError as error:
        errors = [[".".join(map(str, e["loc"])), e["type"]] for e in error.errors()]
    return {"user": user.model_dump(mode="json"), "errors": errors}
