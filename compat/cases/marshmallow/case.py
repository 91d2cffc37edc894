"""validation: load and validate nested user input with marshmallow schemas, collect errors, dump back."""

from marshmallow import Schema, fields, validate


class AddressSchema(Schema):
    street = fields.String(required=True)
    zip = fields.String(required=True, validate=validate.Regexp(r"^\d{5}$"))


class UserSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=40))
    email = fields.Email(required=True)
    age = fields.Integer(validate=validate.Range(min=0, max=150))
    born = fields.Date()
    role = fields.String(load_default="user", validate=validate.OneOf(["user", "admin"]))
    address = fields.Nested(AddressSchema)
    tags = fields.List(fields.String(), load_default=list)


def compute(task):
    from marshmallow import ValidationError  # imported where errors are reported

    schema = UserSchema()
    good = schema.load(task["good"])
    try:
        schema.load(task["bad"])
        errors = None
    except ValidationError as error:
        errors = error.messages
    many = UserSchema(many=True, only=("name", "age")).dump([{"name": "A", "age": 1}, {"name": "B", "age": 2}])
    return {"loaded": schema.dump(good), "born_type": type(good["born"]).__name__, "errors": errors, "many": many}
