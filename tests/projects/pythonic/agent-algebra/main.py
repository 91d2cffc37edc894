"""sympy, which imports ctypes at module level (sympy/external/gmpy.py)."""

import sympy


class Algebra:
    def __init__(self, task):
        self.task = task

    def run(self):
        from sympy.parsing.sympy_parser import parse_expr  # a submodule, imported lazily

        x = sympy.symbols("x")
        roots = sympy.solve(parse_expr(self.task["equation"]), x)
        return sorted(str(root) for root in roots)


def main(config):
    return Algebra(config["task"])
