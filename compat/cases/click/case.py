"""cli/output: a click command group with options, arguments, choices and validation, invoked like a shell would."""

import click


@click.group(context_settings={"max_content_width": 70, "terminal_width": 70})
@click.option("--verbose", "-v", count=True, help="More output.")
@click.pass_context
def cli(ctx, verbose):
    """Manage a tiny inventory."""
    ctx.obj = {"verbose": verbose}


@cli.command()
@click.argument("name")
@click.option("--qty", type=click.IntRange(1, 100), default=1, show_default=True, help="How many.")
@click.option("--unit", type=click.Choice(["kg", "pcs"]), default="pcs")
@click.option("--tag", multiple=True)
@click.pass_obj
def add(obj, name, qty, unit, tag):
    """Add NAME to the inventory."""
    click.echo(f"added {qty} {unit} of {name}" + (f" tags={','.join(tag)}" if tag else "") + (f" (verbosity {obj['verbose']})" if obj["verbose"] else ""))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), required=True)
def show(fmt):
    """Show the inventory."""
    click.echo('{"items": []}' if fmt == "json" else "no items")


def compute(task):
    import shlex  # stdlib: split the command lines as a shell would
    from click.testing import CliRunner  # the test runner is a separate module, imported where used

    runner = CliRunner()
    out = []
    for line in task["command_lines"]:
        result = runner.invoke(cli, shlex.split(line), prog_name="inv")
        out.append({"line": line, "exit_code": result.exit_code, "output": result.output})
    return out
