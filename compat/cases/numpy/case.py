"""math: solve a linear system, eigenvalues and a seeded random sample with numpy."""


def compute(task):
    import numpy as np  # heavy: imported where the numbers are crunched

    a = np.array(task["matrix"], dtype=float)
    solution = np.linalg.solve(a, np.array(task["rhs"], dtype=float))
    return {
        "solution": [round(float(v), 9) for v in solution],
        "eigenvalues": sorted(round(float(v), 9) for v in np.linalg.eigvalsh(a)),
        "sample_mean": round(float(np.random.default_rng(task["seed"]).normal(size=1000).mean()), 9),
    }
