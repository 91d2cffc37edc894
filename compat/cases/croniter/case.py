"""dates: next and previous runs of cron expressions, including a DST change and a cron-expression check."""

from datetime import datetime, timezone


def compute(task):
    from croniter import croniter  # loaded where a schedule is evaluated

    base = datetime.fromisoformat(task["base"]).astimezone(timezone.utc)
    out = {}
    for expression in task["expressions"]:
        schedule = croniter(expression, base)
        out[expression] = {
            "next": [schedule.get_next(datetime).isoformat() for _ in range(task["count"])],
            "prev": croniter(expression, base).get_prev(datetime).isoformat(),
        }
    return {
        "schedules": out,
        "valid": {expr: croniter.is_valid(expr) for expr in task["check"]},
        "match": croniter.match(task["expressions"][0], base),
    }
