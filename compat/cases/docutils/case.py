"""markup: reStructuredText to HTML5 with docutils (writer, parser and language modules load by name)."""


def compute(task):
    from docutils.core import publish_doctree, publish_parts  # loaded where a document is rendered

    parts = publish_parts(task["rst"], writer_name="html5", settings_overrides={"report_level": 5, "_disable_config": True})
    tree = publish_doctree(task["rst"], settings_overrides={"report_level": 5, "_disable_config": True})
    return {
        "title": parts["title"],
        "body": parts["body"],
        "node_types": sorted({node.tagname for node in tree.findall()}),
        "de_body": publish_parts(task["rst_de"], writer_name="html5",
                                 settings_overrides={"language_code": "de", "report_level": 5, "_disable_config": True})["body"],
    }
