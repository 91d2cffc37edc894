"""math: solve cubics exactly, factor, integrate, differentiate and expand a series symbolically."""


def compute(task):
    import sympy  # heavy: real code imports it where symbolic work starts

    x = sympy.Symbol("x")
    cubic = sympy.sympify(task["cubic"])
    roots = sympy.solve(sympy.Eq(cubic, 0), x)
    other = sympy.Poly(sympy.sympify(task["other_cubic"]), x)
    return {
        "roots": sorted(str(root) for root in roots),
        "factored": str(sympy.factor(cubic)),
        "real_roots_other": [str(sympy.N(root, 15)) for root in other.real_roots()],
        "all_roots_other": sorted(str(sympy.N(root, 12)) for root in other.all_roots()),
        "discriminant": str(sympy.discriminant(other)),
        "integral": str(sympy.integrate(sympy.sympify(task["integrand"]), x)),
        "definite": str(sympy.integrate(sympy.exp(-x**2), (x, -sympy.oo, sympy.oo))),
        "derivative": str(sympy.diff(sympy.sympify(task["integrand"]), x, 2)),
        "series": str(sympy.series(sympy.sin(x) / x, x, 0, 8)),
        "simplified": str(sympy.simplify(sympy.sympify(task["simplify"]))),
        "latex": sympy.latex(sympy.Integral(sympy.sqrt(x) / (1 + x), x)),
        "matrix_det": str(sympy.Matrix(task["matrix"]).det()),
        "eigenvals": sorted((str(k), v) for k, v in sympy.Matrix(task["matrix"]).eigenvals().items()),
    }
