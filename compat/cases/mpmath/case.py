"""math: arbitrary-precision constants, a numerical integral, a root, zeta values and a matrix solve with mpmath."""


def compute(task):
    import mpmath  # loaded where high precision is needed

    with mpmath.workdps(task["digits"]):
        return {
            "pi": mpmath.nstr(mpmath.pi, task["digits"]),
            "e": mpmath.nstr(mpmath.e, task["digits"]),
            "gaussian_integral": mpmath.nstr(mpmath.quad(lambda t: mpmath.exp(-t**2), [-mpmath.inf, mpmath.inf]), 30),
            "sqrt_pi": mpmath.nstr(mpmath.sqrt(mpmath.pi), 30),
            "root": mpmath.nstr(mpmath.findroot(lambda t: mpmath.cos(t) - t, 1), 30),
            "zeta3": mpmath.nstr(mpmath.zeta(3), 30),
            "gamma": mpmath.nstr(mpmath.gamma(mpmath.mpf("0.5")), 25),
            "solve": [mpmath.nstr(v, 20) for v in mpmath.lu_solve(mpmath.matrix(task["matrix"]), mpmath.matrix(task["rhs"]))],
            "bessel": mpmath.nstr(mpmath.besselj(0, 5), 20),
            "polyroots": [mpmath.nstr(r, 15) for r in mpmath.polyroots([1, 0, 1, 1])],
        }
