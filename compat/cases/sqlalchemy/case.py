"""databases: define tables and compile DDL and queries (joins, aggregates, CTEs, upserts) for three SQL dialects."""

import sqlalchemy as sa


def compute(task):
    # Dialects are imported by name where SQL for a given database is produced.
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    meta = sa.MetaData()
    users = sa.Table("users", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50), nullable=False),
                     sa.Column("email", sa.String(120), unique=True), sa.Column("created", sa.DateTime, server_default=sa.func.now()))
    orders = sa.Table("orders", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("user_id", sa.ForeignKey("users.id"), index=True),
                      sa.Column("total", sa.Numeric(10, 2)), sa.Column("status", sa.Enum("new", "paid", name="status")))
    big = sa.select(orders.c.user_id, sa.func.sum(orders.c.total).label("spent")).group_by(orders.c.user_id).having(sa.func.sum(orders.c.total) > task["min_total"]).cte("big")
    query = (sa.select(users.c.name, big.c.spent).join(big, big.c.user_id == users.c.id)
             .where(users.c.name.like(task["pattern"]), users.c.id.in_(task["ids"])).order_by(big.c.spent.desc()).limit(10))
    out = {}
    for name, dialect in {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect()}.items():
        out[name] = {
            "ddl": [str(sa.schema.CreateTable(table).compile(dialect=dialect)).strip() for table in meta.sorted_tables],
            "query": str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})),
        }
    upsert = postgresql.insert(users).values(id=1, name="Ada").on_conflict_do_update(index_elements=["id"], set_={"name": "Ada"})
    out["upsert"] = str(upsert.compile(dialect=postgresql.dialect()))
    out["tables"] = [table.name for table in meta.sorted_tables]
    return out
