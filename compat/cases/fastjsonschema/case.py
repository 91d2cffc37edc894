"""validation: compile a JSON Schema (draft 7) to Python code, validate documents, fill defaults, report errors."""


def compute(task):
    import fastjsonschema  # loaded where schemas are compiled (it generates and execs Python code)

    validate = fastjsonschema.compile(task["schema"])
    results = []
    for document in task["documents"]:
        try:
            results.append({"ok": True, "value": validate(document)})
        except fastjsonschema.JsonSchemaValueException as error:
            results.append({"ok": False, "message": error.message, "path": error.path, "rule": error.rule})
    code = fastjsonschema.compile_to_code(task["schema"])
    return {"results": results, "generated_lines_over_20": len(code.splitlines()) > 20}
