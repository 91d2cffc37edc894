"""markup: Markdown to HTML and to an AST with mistune's table, strikethrough, task-list and footnote plugins."""


def compute(task):
    import mistune  # loaded where Markdown is rendered; its plugins load by name

    plugins = ["table", "strikethrough", "task_lists", "footnotes", "url"]
    html = mistune.create_markdown(plugins=plugins)(task["text"])
    ast = mistune.create_markdown(renderer=None, plugins=plugins)(task["text"])
    return {"html": html, "block_types": [node["type"] for node in ast], "escaped": mistune.html("<script>x</script> *a*")}
