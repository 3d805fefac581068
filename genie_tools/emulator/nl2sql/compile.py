"""From an :class:`Intent` to Databricks SQL, joining tables along the declared keys."""

from __future__ import annotations

import datetime as dt
import re

from genie_tools._optional import require
from genie_tools.emulator.nl2sql.intent import (
    Filter,
    Group,
    Intent,
    Metric,
    _alias,
    conditional_sum,
    is_row_count,
)
from genie_tools.emulator.nl2sql.schema import Column, SpaceSchema

_GRAIN_SQL = {
    "year": "year({c})",
    "quarter": "quarter({c})",
    "month": "date_trunc('MONTH', {c})",
    "month_of_year": "month({c})",
    "day": "CAST({c} AS DATE)",
}


def literal(value: object) -> str:
    """A SQL literal for a Python value.

    Example:
        >>> literal("O'Brien"), literal(dt.date(1996, 1, 1)), literal(5)
        ("'O''Brien'", "DATE '1996-01-01'", '5')
    """
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value == int(value) else repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class SqlWriter:
    """Writes the SQL for intents over one space."""

    def __init__(self, schema: SpaceSchema) -> None:
        self.schema = schema
        self.sqlglot = require("sqlglot", extra="emulator", purpose="The Genie emulator's NL→SQL")

    def write(self, intent: Intent) -> str:
        """Databricks SQL for ``intent`` (fully qualified table names)."""
        intent = self._filtered_instead_of_cased(intent)
        tables = self._tables(intent)
        base, joins = self._join_tree(tables, intent)
        alias = {name: self.schema.tables[name].alias for name in [base, *[j[0] for j in joins]]}
        select: list[str] = []
        group_by: list[str] = []
        order_time: list[str] = []
        seen_groups: set[str] = set()
        for g in intent.groups:
            if self._group_expr(g, alias) in seen_groups:
                continue  # "by region … by region" is one grouping
            seen_groups.add(self._group_expr(g, alias))
            if g.with_key is not None:
                expr = f"{alias[g.with_key.table]}.{g.with_key.name}"
                select.append(f"{expr} AS {_alias(g.name or 'row')}_key")
                group_by.append(expr)
            expr = self._group_expr(g, alias)
            name = _alias(g.name) if g.name else _name(g.column)
            select.append(f"{expr} AS {name}")
            group_by.append(expr)
            if g.grain:
                order_time.append(name)
        for m in intent.metrics:
            select.append(f"{self._qualify(self._counted_once(m, alias), alias)} AS {m.name}")
        lines = [("SELECT DISTINCT " if intent.listing else "SELECT ") + ",\n       ".join(select)]
        lines.append(f"FROM {base} {alias[base]}")
        for table, mine, theirs in joins:
            lines.append(
                f"JOIN {table} {alias[table]} ON {alias[table]}.{mine.name} = "
                f"{alias[theirs.table]}.{theirs.name}"
            )
        where = [self._condition(f, alias) for f in intent.filters]
        if where:
            lines.append("WHERE " + "\n  AND ".join(where))
        if group_by and intent.metrics:
            lines.append("GROUP BY " + ", ".join(group_by))
        if intent.having:
            conditions = [
                f"{self._qualify(m.sql, alias)} {op} {literal(value)}"
                for m, op, value in intent.having
            ]
            lines.append("HAVING " + " AND ".join(conditions))
        if intent.count_groups and intent.metrics:
            # "how many customers placed more than 20 orders": count the groups that qualify
            keys = ",\n       ".join(s for s in select if not _is_metric(s, intent))
            inner = "\n".join(["SELECT " + keys, *lines[1:]])
            inner = "\n".join("  " + line for line in inner.splitlines())
            return f"SELECT COUNT(*) AS {intent.metrics[0].name}\nFROM (\n{inner}\n) qualifying"
        order = self._order(intent, order_time)
        if order:
            lines.append("ORDER BY " + ", ".join(order))
        if intent.limit is not None:
            lines.append(f"LIMIT {int(intent.limit)}")
        return "\n".join(lines)

    def _filtered_instead_of_cased(self, intent: Intent) -> Intent:
        """``SUM(CASE WHEN c THEN x ELSE 0 END)`` alone as ``SUM(x)`` over the rows where c.

        As the spaces' examples write "revenue lost to returns": the returned lines only, so
        a year without returns is no row of zeros.
        """
        if len(intent.metrics) != 1 or intent.having or intent.count_groups or intent.listing:
            return intent
        metric = intent.metrics[0]
        found = conditional_sum(metric)
        if found is None:
            return intent
        condition, value = found
        column = self.schema.column_named_in(condition, metric.tables)
        if column is None:
            return intent
        out = intent.copy()
        sql = "COUNT(*)" if value == "1" else f"SUM({value})"
        out.metrics = [Metric(metric.name, sql, set(metric.tables))]
        out.filters.append(Filter(column, "SQL", [condition]))
        return out

    # pieces ------------------------------------------------------------
    def _tables(self, intent: Intent) -> list[str]:
        needed: list[str] = []
        for m in [*intent.metrics, *(h[0] for h in intent.having)]:
            needed.extend(sorted(m.tables))
        for g in intent.groups:
            needed.append(g.column.table)
        for f in intent.filters:
            needed.append(f.column.table)
        return list(dict.fromkeys(needed))

    def _join_tree(
        self, tables: list[str], intent: Intent
    ) -> tuple[str, list[tuple[str, Column, Column]]]:
        if not tables:
            raise LookupError("nothing to select from")
        base = tables[0]
        joined = {base}
        joins: list[tuple[str, Column, Column]] = []
        for table in tables[1:]:
            if table in joined:
                continue
            for step_table, mine, theirs in self.schema.join_path(base, table):
                if step_table not in joined:
                    joined.add(step_table)
                    # mine is on the already-joined side, theirs on the new table
                    joins.append((step_table, theirs, mine))
        return base, joins

    def _counted_once(self, metric: Metric, alias: dict[str, str]) -> str:
        """``COUNT(*)`` of a table's rows as distinct keys when a join repeats those rows.

        Counting customers over their orders counts each customer once per order unless
        the count is of distinct customer keys.
        """
        if len(metric.tables) != 1 or not is_row_count(metric.sql):
            return metric.sql
        table = self.schema.tables[next(iter(metric.tables))]
        if table.key is None or not self._repeats_rows(
            table.name, [t for t in alias if t != table.name]
        ):
            return metric.sql
        return f"COUNT(DISTINCT {table.key.name})"

    def _repeats_rows(self, table: str, others: list[str]) -> bool:
        """Whether joining ``others`` to ``table`` can repeat its rows (a one-to-many step)."""
        for other in others:
            for step_table, _, theirs in self.schema.join_path(table, other):
                if theirs is not self.schema.tables[step_table].key:
                    return True
        return False

    def _qualify(self, sql: str, alias: dict[str, str]) -> str:
        exp = self.sqlglot.exp
        tree = self.sqlglot.parse_one(sql, read="databricks")
        for col in tree.find_all(exp.Column):
            if col.table:
                continue
            owners = [c for c in self.schema.columns.get(col.name.lower(), []) if c.table in alias]
            if owners:
                col.set("table", exp.to_identifier(alias[owners[0].table]))
        return str(tree.sql(dialect="databricks"))

    def _group_expr(self, g: Group, alias: dict[str, str]) -> str:
        ref = f"{alias[g.column.table]}.{g.column.name}"
        if g.part is not None:
            return f"split_part({ref}, ' ', {int(g.part)})"
        return _GRAIN_SQL[g.grain].format(c=ref) if g.grain else ref

    def _condition(self, f: Filter, alias: dict[str, str]) -> str:
        if f.op == "SQL":  # bare column names, maybe several ("l_receiptdate > l_commitdate")
            return self._qualify(str(f.values[0]), alias)
        return condition_sql(f, f"{alias[f.column.table]}.{f.column.name}")

    def _order(self, intent: Intent, time_names: list[str]) -> list[str]:
        first: Metric | None = intent.metrics[0] if intent.metrics else None
        if first is None or not intent.groups:
            return []
        if intent.rank_by_metric or (intent.descending is not None and not time_names):
            direction = "ASC" if intent.descending is False else "DESC"
            return [f"{first.name} {direction}"]
        if time_names:
            direction = " DESC" if intent.descending else ""
            return [f"{n}{direction}" for n in time_names]
        return [f"{first.name} DESC"]


def condition_sql(f: Filter, ref: str) -> str:
    """The SQL condition of a filter on the column written as ``ref``."""
    if f.op == "SQL":  # a rule from the instructions, written with the bare column name
        return re.sub(rf"\b{re.escape(f.column.name)}\b", ref, str(f.values[0]))
    if f.op == "RANGE":
        return f"{ref} >= {literal(f.values[0])} AND {ref} < {literal(f.values[1])}"
    if f.op == "BETWEEN":
        return f"{ref} BETWEEN {literal(f.values[0])} AND {literal(f.values[1])}"
    if f.op == "YEARS":
        return f"year({ref}) IN ({', '.join(literal(v) for v in f.values)})"
    if f.op == "IN":
        return f"{ref} IN ({', '.join(literal(v) for v in f.values)})"
    if f.op == "LIKE":
        likes = [f"{ref} LIKE {literal('%' + str(v) + '%')}" for v in f.values]
        return likes[0] if len(likes) == 1 else "(" + " OR ".join(likes) + ")"
    return f"{ref} {f.op} {literal(f.values[0])}"


def _is_metric(select_item: str, intent: Intent) -> bool:
    return any(select_item.endswith(f" AS {m.name}") for m in intent.metrics)


def _name(column: Column, fallback: str = "") -> str:
    words = [w for w in column.words if w]
    return "_".join(words) if words else (fallback or column.name)
