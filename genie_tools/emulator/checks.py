"""Space declarations checked against the data at start-up, as one clear error.

A typo in a declaration (a column comment on a column that does not exist, a join on a
misspelt key, a measure over a missing column, example SQL over a missing table) would
otherwise surface as a vague answer or a failed query much later. The emulator refuses
to start instead, naming every such key with the tables and columns it could have meant.
"""

from __future__ import annotations

from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.config import ConfigError, Problem
from genie_tools.emulator.engine import UnsafeSqlError, check_read_only
from genie_tools.emulator.spaces import SpaceDecl


def check_spaces(spaces: list[SpaceDecl], db: Any) -> None:
    """Check every space's tables, columns, joins, dimensions, measures and examples.

    Args:
        spaces: The declarations.
        db: The :class:`~genie_tools.emulator.data.Database` they are served from.

    Raises:
        ConfigError: Every unknown table or column, each under its configuration key.

    Example:
        >>> check_spaces(emu.config.spaces, emu.service.db)  # doctest: +SKIP
    """
    problems: list[Problem] = []
    for i, space in enumerate(spaces):
        problems += _space_problems(f"spaces[{i}]", space, db)
    if problems:
        raise ConfigError.of(problems)


def _space_problems(key: str, space: SpaceDecl, db: Any) -> list[Problem]:
    columns: dict[str, list[str]] = {}
    problems: list[Problem] = []
    missing_table = False
    for t, table in enumerate(space.tables):
        found = db.columns(table.name)
        if not found:
            missing_table = True
            problems.append(
                Problem(
                    f"{key}.tables[{t}].name",
                    f"the table {table.name} does not exist in the emulator's data",
                    "declare its file under data.tables or data.attach, or correct the name",
                )
            )
            continue
        columns[table.name.lower()] = found
        lowered = {c.lower() for c in found}
        for name in table.columns:
            if name.lower() not in lowered:
                problems.append(_unknown_column(f"{key}.tables[{t}].columns.{name}", name, found))
    if missing_table:  # the checks below need every table
        return problems
    every = sorted({c for cols in columns.values() for c in cols})
    for j, join in enumerate(space.joins):
        for side in ("left", "right"):
            problems += _column_ref(f"{key}.joins[{j}].{side}", getattr(join, side), columns)
    for d, dim in enumerate(space.dimensions):
        problems += _column_ref(f"{key}.dimensions[{d}].column", dim.column, columns)
    for m, measure in enumerate(space.measures):
        problems += _measure_problems(f"{key}.measures[{m}].sql", measure.sql, every)
    allowed = {t.name.lower() for t in space.tables}
    for e, example in enumerate(space.example_sqls):
        problems += _example_problems(f"{key}.example_sqls[{e}].sql", example.sql, allowed, db)
    return problems


def _unknown_column(key: str, name: str, known: list[str]) -> Problem:
    return Problem(
        key,
        f"the column {name!r} does not exist",
        f"use one of the table's columns: {', '.join(known)}",
    )


def _column_ref(key: str, ref: str, columns: dict[str, list[str]]) -> list[Problem]:
    """A ``catalog.schema.table.column`` reference to one of the space's tables."""
    table, _, column = ref.rpartition(".")
    if table.lower() not in columns:
        return [
            Problem(
                key,
                f"{ref} is not a column of the space's tables",
                f"write it as catalog.schema.table.column, the table one of: {', '.join(columns)}",
            )
        ]
    if column.lower() not in {c.lower() for c in columns[table.lower()]}:
        return [_unknown_column(key, column, columns[table.lower()])]
    return []


def _measure_problems(key: str, sql: str, every: list[str]) -> list[Problem]:
    """A measure's columns (unqualified, in any of the space's tables) must exist."""
    sqlglot = require("sqlglot", extra="emulator", purpose="The Genie emulator's SQL checks")
    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0]
        return [Problem(key, f"{sql!r} does not parse: {first}", "write a SQL aggregate")]
    lowered = {c.lower() for c in every}
    missing = sorted(
        {c.name for c in tree.find_all(sqlglot.exp.Column) if c.name.lower() not in lowered}
    )
    if missing:
        return [
            Problem(
                key,
                f"{sql!r} uses columns the space's tables do not have: {', '.join(missing)}",
                f"use the space's columns: {', '.join(every)}",
            )
        ]
    return []


def _example_problems(key: str, sql: str, allowed: set[str], db: Any) -> list[Problem]:
    """Example SQL must name tables that exist, and compile against the data.

    An example that writes, or reads an existing table outside the space, is no naming
    mistake: it loads, and is answered with a clarification instead of running.
    """
    duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
    unknown = sorted(t for t in _tables_of(sql) if t.count(".") != 2 or not db.columns(t))
    if unknown:
        return [
            Problem(
                key,
                f"the example SQL reads tables the data does not have: {', '.join(unknown)}",
                "use the space's tables, fully qualified: " + ", ".join(sorted(allowed)),
            )
        ]
    try:
        check_read_only(sql, allowed)
    except UnsafeSqlError:
        return []
    try:
        db.cursor().execute("EXPLAIN " + db.names.to_duckdb(sql))
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        first = str(exc).strip().splitlines()[0]
        return [
            Problem(key, f"the example SQL does not run on the data: {first}", "correct the SQL")
        ]
    except duckdb.Error:
        return []  # anything else is not a naming mistake; the query reports it when asked
    return []


def _tables_of(sql: str) -> set[str]:
    """The tables a query names (not its CTEs), as written, lower-case; none if unparsable."""
    sqlglot = require("sqlglot", extra="emulator", purpose="The Genie emulator's SQL checks")
    exp = sqlglot.exp
    try:
        trees = [t for t in sqlglot.parse(sql, read="databricks") if t is not None]
    except sqlglot.errors.SqlglotError:
        return set()  # answered with a clarification at run time
    names: set[str] = set()
    for tree in trees:
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                continue  # a table function (read_parquet…): refused at run time
            name = ".".join(p for p in (table.catalog, table.db, table.name) if p).lower()
            if name not in ctes:
                names.add(name)
    return names
