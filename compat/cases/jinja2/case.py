"""templating: render untrusted templates in Jinja2's sandbox: loops, macros, filters, inheritance and autoescaping."""

import jinja2


def compute(task):
    # The sandbox is a separate module, imported where untrusted templates are rendered.
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(loader=jinja2.DictLoader(task["templates"]), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda value: f"{value:,.2f}"
    page = env.get_template("page.html").render(task["context"])
    try:
        env.from_string("{{ ''.__class__.__mro__ }}").render()
        escape = "allowed"
    except jinja2.exceptions.SecurityError as error:
        escape = f"SecurityError: {error}"
    unsafe = env.from_string("{{ x.__class__ }}").render(x=1)
    return {"page": page, "attribute_escape": escape, "dunder_render": unsafe, "undefined": env.from_string("[{{ missing }}]").render()}
