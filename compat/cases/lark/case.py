"""parsing: a JSON-like config language with an LALR grammar that imports lark's common terminals, and a transformer."""


def compute(task):
    from lark import Lark, Transformer, v_args  # loaded where the grammar is compiled

    @v_args(inline=True)
    class ToPython(Transformer):
        def string(self, token):
            return token[1:-1]

        def number(self, token):
            return float(token) if "." in token or "e" in token.lower() else int(token)

        def true(self):
            return True

        def false(self):
            return False

        def null(self):
            return None

        def array(self, *items):
            return list(items)

        def pair(self, key, value):
            return (str(key), value)

        def obj(self, *pairs):
            return dict(pairs)

    parser = Lark(task["grammar"], start="value", parser="lalr")
    tree = parser.parse(task["text"])
    errors = []
    for bad in task["bad"]:
        try:
            parser.parse(bad)
        except Exception as error:  # noqa: BLE001 - lark raises several UnexpectedInput subclasses
            errors.append([type(error).__name__, getattr(error, "line", None), getattr(error, "column", None)])
    return {"value": ToPython().transform(tree), "rules": sorted({t.data for t in tree.iter_subtrees()}), "errors": errors,
            "earley": str(Lark(task["grammar"], start="value").parse("[1, {a: 2}]"))}
