"""data formats: edit a commented pyproject.toml in place (bump version, add a dependency) keeping its comments and layout."""

import tomlkit


def compute(task):
    import difflib  # stdlib: show what the edit changed, as a review would

    before = task["document"]
    document = tomlkit.parse(before)
    project = document["project"]
    major, minor, patch = (int(part) for part in str(project["version"]).split("."))
    project["version"] = f"{major}.{minor + 1}.0"
    project["dependencies"].append(task["add_dependency"])
    tool = document.setdefault("tool", tomlkit.table())
    tool["compat"] = {"checked": True, "cases": task["cases"]}
    after = tomlkit.dumps(document)
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=0))
    return {"after": after, "diff": diff, "version": project["version"], "unwrapped": document.unwrap()}
