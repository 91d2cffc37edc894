"""validation: validate and coerce a config dict with voluptuous, reporting every error with its path."""


def compute(task):
    # Loaded where configuration is validated.
    from voluptuous import All, Any, Coerce, Email, In, Invalid, Length, MultipleInvalid, Optional, Range, Required, Schema

    schema = Schema({
        Required("name"): All(str, Length(min=1, max=30)),
        Required("port", default=8080): All(Coerce(int), Range(min=1, max=65535)),
        Optional("mode"): In(["dev", "prod"]),
        Optional("admins"): [Email()],
        Optional("limits"): {Required("memory_mb"): All(int, Range(min=16)), Optional("ratio"): Any(float, int)},
    })
    good = schema(task["good"])
    errors = []
    for bad in task["bad"]:
        try:
            schema(bad)
        except MultipleInvalid as error:
            errors.append(sorted([".".join(map(str, e.path)), e.msg] for e in error.errors))
        except Invalid as error:
            errors.append([[".".join(map(str, error.path)), error.msg]])
    return {"good": good, "errors": errors}
