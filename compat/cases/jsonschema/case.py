"""validation: validate documents against a draft 2020-12 JSON Schema and list every error with its path."""


def compute(task):
    import jsonschema  # loaded where documents are validated

    validator = jsonschema.Draft202012Validator(task["schema"])
    return [sorted([list(error.absolute_path), error.validator] for error in validator.iter_errors(doc)) for doc in task["documents"]]
