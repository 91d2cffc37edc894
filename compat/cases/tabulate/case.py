"""cli/output: tabulate mixed numeric and text data in several table formats with alignment and number formatting."""


def compute(task):
    from tabulate import tabulate  # loaded where a report is printed

    rows, headers = task["rows"], task["headers"]
    return {fmt: tabulate(rows, headers=headers, tablefmt=fmt, floatfmt=".2f", missingval="n/a") for fmt in task["formats"]} | {
        "dicts": tabulate([dict(zip(headers, row)) for row in rows], headers="keys", tablefmt="simple", intfmt=","),
        "colalign": tabulate(rows, headers=headers, colalign=("right", "center", "left", "decimal")),
        "wrapped": tabulate([["a long cell that should wrap", 1]], headers=["text", "n"], maxcolwidths=[10, None], tablefmt="grid"),
    }
