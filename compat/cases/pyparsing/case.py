"""parsing: an arithmetic grammar with precedence, variables and functions, evaluated exactly with fractions."""

import math
from fractions import Fraction


class Node:
    """A parsed sub-expression: evaluates itself against the variables."""

    def __init__(self, evaluate):
        self.evaluate = evaluate


def _fold(ops):
    def action(tokens):
        items = list(tokens[0])
        if items[1] == "^":  # right associative
            def power(env, items=items):
                value = items[-1].evaluate(env)
                for base in reversed(items[:-1:2]):
                    value = base.evaluate(env) ** int(value)
                return value
            return Node(power)

        def fold(env, items=items):
            value = items[0].evaluate(env)
            for op, rhs in zip(items[1::2], items[2::2]):
                value = ops[op](value, rhs.evaluate(env))
            return value
        return Node(fold)
    return action


def compute(task):
    import pyparsing as pp  # loaded where the grammar is built

    functions = {"sqrt": lambda v: Fraction(math.isqrt(v.numerator), math.isqrt(v.denominator)), "abs": abs}
    number = pp.Regex(r"\d+(\.\d*)?").set_parse_action(lambda t: Node(lambda env, v=Fraction(t[0]): v))
    name = pp.Word(pp.alphas, pp.alphanums + "_")
    expr = pp.Forward()
    call = (name + pp.Suppress("(") + expr + pp.Suppress(")")).set_parse_action(
        lambda t: Node(lambda env, f=functions[t[0]], arg=t[1]: f(arg.evaluate(env))))
    variable = name.copy().set_parse_action(lambda t: Node(lambda env, n=t[0]: Fraction(env[n])))
    expr <<= pp.infix_notation(call | number | variable, [
        (pp.one_of("+ -"), 1, pp.OpAssoc.RIGHT, lambda t: Node(lambda env, s=t[0][0], v=t[0][1]: -v.evaluate(env) if s == "-" else v.evaluate(env))),
        ("^", 2, pp.OpAssoc.RIGHT, _fold({})),
        (pp.one_of("* /"), 2, pp.OpAssoc.LEFT, _fold({"*": lambda a, b: a * b, "/": lambda a, b: a / b})),
        (pp.one_of("+ -"), 2, pp.OpAssoc.LEFT, _fold({"+": lambda a, b: a + b, "-": lambda a, b: a - b})),
    ])
    results = {}
    for text in task["expressions"]:
        try:
            results[text] = str(expr.parse_string(text, parse_all=True)[0].evaluate(task["variables"]))
        except pp.ParseException as error:
            results[text] = f"ParseException at column {error.column}"
    return results
