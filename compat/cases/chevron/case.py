"""templating: logic-less Mustache rendering with sections, inverted sections, partials and escaping."""


def compute(task):
    import chevron  # loaded where the first message is rendered

    rendered = chevron.render(task["template"], task["data"], partials_dict=task["partials"])
    return {
        "rendered": rendered,
        "custom_delimiters": chevron.render("{{=<% %>=}}Hi <% name %>!", {"name": "Ada"}),
        "tokens": [kind for kind, _ in chevron.tokenizer.tokenize(task["template"])][:15],
    }
