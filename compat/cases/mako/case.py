"""templating: compile and render Mako templates with defs, inheritance, control flow and HTML escaping."""


def compute(task):
    from mako.lookup import TemplateLookup  # loaded where templates are compiled (to Python source)
    from mako.template import Template

    lookup = TemplateLookup()
    for name, source in task["templates"].items():
        lookup.put_string(name, source)
    rendered = lookup.get_template("invoice.mako").render(**task["context"])
    inline = Template("${name | h} has ${len(items)} item${'s' if len(items) != 1 else ''}").render(name="<Ada & Bob>", items=[1, 2])
    return {"invoice": rendered, "inline": inline, "code_has_render_body": "def render_body" in Template("x").code}
