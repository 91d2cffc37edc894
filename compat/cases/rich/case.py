"""cli/output: render a table, a tree, a panel and styled markup with rich to plain text and to HTML."""

import io

from rich.console import Console


def compute(task):
    # Renderables live in their own modules, imported where they are drawn.
    from rich.panel import Panel
    from rich.table import Table
    from rich.tree import Tree

    console = Console(file=io.StringIO(), width=task["width"], color_system=None, record=True, force_terminal=False,
                      force_jupyter=False, legacy_windows=False, _environ={})
    table = Table(title="Cases", show_lines=False)
    for column in task["columns"]:
        table.add_column(column, justify="right" if column == "Time" else "left")
    for row in task["rows"]:
        table.add_row(*row)
    tree = Tree("project")
    for folder, files in task["tree"].items():
        branch = tree.add(f"[bold]{folder}[/bold]")
        for name in files:
            branch.add(name)
    console.print(table)
    console.print(tree)
    console.print(Panel.fit("[green]passed[/green] 41 / [red]failed[/red] 2", title="summary"))
    console.print("Unicode: ✓ — 東京 — [link=https://example.com]link[/link] :thumbs_up:")
    text = console.export_text(clear=False)
    html = console.export_html(inline_styles=True, code_format="{code}")
    return {"text": text, "html_has_table_title": "Cases" in html, "lines": len(text.splitlines())}
