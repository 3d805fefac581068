"""Databricks SQL in, DuckDB SQL out: the checks and rewrites a statement gets before it runs.

A statement must be one read-only query over tables the emulator has. Its unqualified
table names are qualified with the request's ``catalog``/``schema`` (``hive_metastore``
and ``default`` when the request names none), its ``:name`` markers
become DuckDB prepared parameters - values are never spliced into SQL text - and sqlglot
transpiles the result to DuckDB. Everything refused here ends the statement ``FAILED``.

This is not :func:`genie_tools.emulator.engine.check_read_only`: that one guards the SQL
Genie itself writes against one space's tables, with a plain yes/no. Here arbitrary user
SQL meets the whole warehouse, and each refusal needs the error class and SQLSTATE that
Databricks gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.catalogs import CatalogNames
from genie_tools.emulator.statements.failures import StatementFailure, read_only_failure
from genie_tools.emulator.statements.parameters import PARAMETER_TYPE, STRING_TYPES, Parameter

DEFAULT_CATALOG = "hive_metastore"
"""The catalog of names that neither the SQL nor the request qualifies (no table lives here)."""
DEFAULT_SCHEMA = "default"
# Statements that change something, or that Databricks SQL does not have but DuckDB does.
_WRITE_KEYWORDS = frozenset(
    (
        "ALTER ANALYZE ATTACH CACHE CALL CHECKPOINT CLEAR COMMENT COPY CREATE DEALLOCATE "
        "DELETE DETACH DROP EXECUTE EXPORT FSCK GRANT IMPORT INSERT INSTALL LOAD MERGE MSCK "
        "OPTIMIZE PRAGMA PREPARE REFRESH REPAIR REPLACE RESET RESTORE REVOKE SET TRUNCATE "
        "UNCACHE UPDATE USE VACUUM"
    ).split()
)
# Functions that reach files, the network, the environment or the engine's internals.
_FORBIDDEN_FUNCTIONS = tuple(
    (
        "read_ glob query sniff_ parquet_ iceberg_ delta_ getenv duckdb_ pragma_ sqlite_ "
        "postgres_ mysql_ json_execute load_ install_ which_secret arrow_scan seq_scan"
    ).split()
)


@dataclass
class Compiled:
    """A statement ready for DuckDB."""

    duckdb_sql: str
    parameters: dict[str, str | None]
    """DuckDB named parameters (``$p0``...), values as the request gave them."""
    typed: list[tuple[Parameter, str]]
    """Parameters with a declared type, and that type in DuckDB's dialect."""
    tables: set[tuple[str, str, str]] = field(default_factory=set)
    """The tables the statement reads: ``(catalog, schema, table)``, lower-case."""


@dataclass
class CatalogIndex:
    """The tables and views the emulator's warehouse holds, lower-case."""

    tables: set[tuple[str, str, str]]
    schemas: set[tuple[str, str]]
    names: CatalogNames = field(default_factory=CatalogNames)
    """Where each catalog lives in DuckDB (``main``… are stored under other names)."""

    @property
    def catalogs(self) -> set[str]:
        """Catalog names."""
        return {c for c, _ in self.schemas}

    @classmethod
    def load(cls, cursor: Any, names: CatalogNames | None = None) -> CatalogIndex:
        """Read the attached catalogs (not DuckDB's own ``memory``, ``system``, ``temp``).

        Catalogs are listed under their Unity Catalog names (``names`` maps them back).
        """
        names = names or CatalogNames()
        hidden = "('memory', 'system', 'temp')"
        rows = cursor.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
            f"WHERE NOT internal AND database_name NOT IN {hidden} "
            "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views() "
            f"WHERE NOT internal AND database_name NOT IN {hidden}"
        ).fetchall()
        schemas = cursor.execute(
            "SELECT database_name, schema_name FROM duckdb_schemas() "
            f"WHERE database_name NOT IN {hidden} "
            "AND schema_name NOT IN ('information_schema', 'pg_catalog')"
        ).fetchall()
        return cls(
            tables={(names.external(c).lower(), s.lower(), t.lower()) for c, s, t in rows},
            schemas={(names.external(c).lower(), s.lower()) for c, s in schemas},
            names=names,
        )


def compile_statement(
    sql: str,
    *,
    catalog: str | None,
    schema: str | None,
    parameters: list[Parameter],
    index: CatalogIndex,
) -> Compiled:
    """Check and translate one Databricks SQL statement for DuckDB.

    Args:
        sql: The statement, in Databricks SQL.
        catalog: Default catalog for unqualified names (like ``USE CATALOG``).
        schema: Default schema for unqualified names (like ``USE SCHEMA``).
        parameters: Values for the ``:name`` markers.
        index: The tables that exist.

    Returns:
        DuckDB SQL and its named parameters.

    Raises:
        StatementFailure: The statement is not one read-only query over existing tables,
            does not parse, or has an unbound parameter.
    """
    _sqlglot()  # a missing extra is reported before anything is said about the SQL
    default_catalog, default_schema = _defaults(catalog, schema, index)
    tree = _parse_read_only_query(sql)
    tables = _qualify_tables(tree, default_catalog, default_schema, index)
    bound, typed = _bind_parameters(tree, parameters)
    return Compiled(
        duckdb_sql=tree.sql(dialect="duckdb"), parameters=bound, typed=typed, tables=tables
    )


def _sqlglot() -> Any:
    return require("sqlglot", extra="emulator", purpose="The emulator's SQL statements")


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _defaults(catalog: str | None, schema: str | None, index: CatalogIndex) -> tuple[str, str]:
    """The lower-case catalog and schema of unqualified names; given ones must exist."""
    if catalog and catalog.lower() not in index.catalogs:
        raise StatementFailure(
            "NO_SUCH_CATALOG_EXCEPTION",
            f"Catalog '{catalog}' was not found. Please verify the catalog name and then retry "
            f"the query or command again. Catalogs: {', '.join(sorted(index.catalogs))}.",
            "42704",
        )
    default_catalog = (catalog or DEFAULT_CATALOG).lower()
    default_schema = (schema or DEFAULT_SCHEMA).lower()
    if schema and (default_catalog, default_schema) not in index.schemas:
        raise StatementFailure(
            "SCHEMA_NOT_FOUND",
            f"The schema {_ident(default_catalog)}.{_ident(schema)} cannot be found. Verify "
            "the spelling and correctness of the schema and catalog"
            + ("." if catalog else f" (no catalog was given: the default is {DEFAULT_CATALOG})."),
            "42704",
        )
    return default_catalog, default_schema


def _split_statements(sql: str) -> list[list[Any]]:
    """Tokens of each statement (split on semicolons), empty statements dropped."""
    sqlglot = _sqlglot()
    try:
        tokens = sqlglot.Dialect.get_or_raise("databricks").tokenize(sql)
    except sqlglot.errors.SqlglotError as exc:
        raise StatementFailure("PARSE_SYNTAX_ERROR", f"Syntax error: {exc}.", "42601") from exc
    statements: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == sqlglot.tokens.TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def _parse_read_only_query(sql: str) -> Any:
    """Parse ``sql`` as exactly one query that writes nothing and calls no unsafe function.

    Statements are counted and their first keyword checked on tokens, before parsing, so
    that a write is refused as a write whatever sqlglot makes of the rest of it.
    """
    sqlglot = _sqlglot()
    exp = sqlglot.exp
    statements = _split_statements(sql)
    if not statements:
        raise StatementFailure(
            "PARSE_EMPTY_STATEMENT", "Syntax error, unexpected empty statement.", "42617"
        )
    if len(statements) > 1:
        raise StatementFailure(
            "EMULATOR_MULTIPLE_STATEMENTS",
            f"Only one statement may run per request; found {len(statements)}. Nothing ran.",
            "42601",
        )
    first = statements[0][0].text.upper()
    if first in _WRITE_KEYWORDS:
        raise read_only_failure(first)
    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except sqlglot.errors.SqlglotError as exc:
        raise StatementFailure(
            "PARSE_SYNTAX_ERROR", f"Syntax error: {str(exc).splitlines()[0]}", "42601"
        ) from exc
    if not isinstance(tree, exp.Query | exp.Values):
        kind = tree.this if isinstance(tree, exp.Command) else tree.key
        raise read_only_failure(str(kind).upper())
    writes = (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Drop,
        exp.Create,
        exp.Alter,
        exp.Merge,
        exp.Copy,
        exp.TruncateTable,
        exp.Into,
        exp.Command,
        exp.Set,
        exp.Pragma,
        exp.Use,
    )
    write = tree.find(*writes)
    if write is not None:
        raise read_only_failure(f"{write.key.upper()} inside a query")
    for func in tree.find_all(exp.Func):
        _check_function(func)
    return tree


def _function_name(node: Any) -> str:
    exp = _sqlglot().exp
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _check_function(node: Any) -> None:
    name = _function_name(node)
    if name.startswith(_FORBIDDEN_FUNCTIONS):
        raise StatementFailure(
            "EMULATOR_FUNCTION_NOT_ALLOWED",
            f"The function {name}() reads files or engine internals, which the emulator's "
            "warehouse does not allow; query the catalogs' tables instead.",
            "42501",
        )


def _qualify_tables(
    tree: Any, catalog: str, schema: str, index: CatalogIndex
) -> set[tuple[str, str, str]]:
    """Give every table in ``tree`` its full name, defaulting to ``catalog``/``schema``.

    The catalog written into the tree is the DuckDB database that holds it.

    Returns:
        The tables read, under their Unity Catalog names (lower-case).

    Raises:
        StatementFailure: A table does not exist, or is a table-valued function.
    """
    exp = _sqlglot().exp
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    read: set[tuple[str, str, str]] = set()
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            if isinstance(table.this, exp.Func):
                _check_function(table.this)
                name = _function_name(table.this)
            else:
                name = table.this.sql(dialect="databricks")
            raise StatementFailure(
                "EMULATOR_UNSUPPORTED_FEATURE",
                f"The table-valued function {name}() is not supported by the emulator's "
                "warehouse; query the catalogs' tables instead.",
                "0A000",
            )
        written = ".".join(_ident(p) for p in (table.catalog, table.db, table.name) if p)
        if not table.db and not table.catalog and table.name.lower() in ctes:
            continue
        qualified = (
            (table.catalog or catalog).lower(),
            (table.db or schema).lower(),
            table.name.lower(),
        )
        if qualified not in index.tables:
            raise StatementFailure(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view {written} cannot be found. Verify the spelling and "
                "correctness of the schema and catalog. If you did not qualify the name with a "
                "schema, verify the catalog and schema of the request, or qualify the name "
                "with the correct schema and catalog.",
                "42P01",
            )
        read.add(qualified)
        table.set("catalog", exp.to_identifier(index.names.internal(qualified[0])))
        table.set("db", exp.to_identifier(qualified[1]))
    # Columns written catalog.schema.table.column name the catalog too.
    index.names.rewrite(tree)
    return read


def _bind_parameters(
    tree: Any, parameters: list[Parameter]
) -> tuple[dict[str, str | None], list[tuple[Parameter, str]]]:
    """Replace each ``:name`` marker in ``tree`` with a DuckDB parameter (``$p0``...).

    Markers are numbered in order of first use; a name used twice binds one value. A
    typed parameter's marker is wrapped in a cast to its type, so the string value is
    converted by the engine, never formatted into the SQL.

    Returns:
        The DuckDB parameter values by name, and the typed parameters with their types in
        DuckDB's dialect (for :func:`.parameters.check_values`).

    Raises:
        StatementFailure: A positional ``?`` marker, a marker without a value, or an
            unsupported type.
    """
    exp = _sqlglot().exp
    by_name = {p.name: p for p in parameters}
    bound: dict[str, str | None] = {}
    typed: list[tuple[Parameter, str]] = []
    names: dict[str, str] = {}
    for marker in list(tree.find_all(exp.Placeholder)):
        name = marker.name
        if not name or name == "?":
            raise StatementFailure(
                "UNSUPPORTED_FEATURE.POSITIONAL_PARAMETERS",
                "Positional parameter markers (?) are not supported by the Statement "
                "Execution API; use named markers (:name).",
                "0A000",
            )
        param = by_name.get(name)
        if param is None:
            raise StatementFailure(
                "UNBOUND_SQL_PARAMETER",
                f"Found the unbound parameter: {name}. Please, fix `parameters` and provide a "
                "value for it.",
                "42P02",
            )
        if name not in names:
            names[name] = f"p{len(names)}"
            bound[names[name]] = param.value
        replacement = exp.Placeholder(this=names[name])
        # Checked again here: compile_statement is public and may get any Parameter.
        if not PARAMETER_TYPE.fullmatch(param.type):
            raise StatementFailure(
                "INVALID_PARAMETER_MARKER_VALUE.UNSUPPORTED_TYPE",
                f"Parameter '{name}' has the unsupported type {param.type!r}.",
                "22023",
            )
        if param.type.upper() not in STRING_TYPES:
            dtype = exp.DataType.build(param.type, dialect="databricks")
            if all(p is not param for p, _ in typed):
                typed.append((param, dtype.sql(dialect="duckdb")))
            replacement = exp.Cast(this=replacement, to=dtype)
        marker.replace(replacement)
    return bound, typed
