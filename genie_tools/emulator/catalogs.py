"""Unity Catalog names over DuckDB databases: ``main`` and friends under names DuckDB accepts.

Unity Catalog's default catalog is ``main``, but DuckDB reserves ``main``, ``system``,
``temp`` and ``memory`` for itself, so a space over ``main.shop.orders`` cannot attach a
database by that name. Every catalog keeps its Unity Catalog name everywhere a user sees
it (space declarations, Genie's SQL, statement results); only the SQL handed to DuckDB
names the internal database, after a rewrite of the parsed query (never a text replace).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genie_tools._optional import require

# DuckDB refuses these as ATTACH names, or resolves them to its own databases/schemas.
RESERVED = frozenset(("main", "system", "temp", "memory", "information_schema", "pg_catalog"))


class CatalogNames:
    """Maps Unity Catalog catalog names to the DuckDB databases that hold them.

    Names outside :data:`RESERVED` map to themselves, so the usual case costs nothing.

    Args:
        catalogs: The catalogs the emulator serves (any case).

    Example:
        >>> names = CatalogNames(["main", "samples"])
        >>> names.internal("MAIN"), names.internal("samples"), names.external("uc_main")
        ('uc_main', 'samples', 'main')
        >>> names.to_duckdb("SELECT amount FROM main.shop.orders")
        'SELECT amount FROM uc_main.shop.orders'
    """

    def __init__(self, catalogs: Iterable[str] = ()) -> None:
        wanted = {c.lower() for c in catalogs}
        self._internal: dict[str, str] = {}
        for name in sorted(wanted & RESERVED):
            internal = f"uc_{name}"
            while internal in wanted or internal in self._internal.values():
                internal = "_" + internal
            self._internal[name] = internal
        self._external = {v: k for k, v in self._internal.items()}

    @property
    def renamed(self) -> dict[str, str]:
        """The catalogs stored under another name: Unity Catalog name -> DuckDB name."""
        return dict(self._internal)

    def internal(self, catalog: str) -> str:
        """The DuckDB database holding ``catalog``."""
        return self._internal.get(catalog.lower(), catalog)

    def external(self, database: str) -> str:
        """The Unity Catalog name of a DuckDB database."""
        return self._external.get(database.lower(), database)

    def table(self, qualified: str) -> str:
        """``catalog.schema.table`` as a quoted DuckDB name of the table that holds it."""
        catalog, schema, table = qualified.split(".")
        return ".".join(_quote(p) for p in (self.internal(catalog), schema, table))

    def rewrite(self, tree: Any) -> Any:
        """Point the tables and columns of a parsed (sqlglot) query at the DuckDB databases.

        The tree is changed in place and returned.
        """
        if not self._internal:
            return tree
        exp = _sqlglot().exp
        for node in tree.find_all(exp.Table, exp.Column):
            catalog = node.args.get("catalog")
            if isinstance(catalog, exp.Identifier) and catalog.name.lower() in self._internal:
                node.set("catalog", exp.to_identifier(self._internal[catalog.name.lower()]))
        return tree

    def to_duckdb(self, sql: str) -> str:
        """Databricks SQL transpiled to DuckDB's dialect, over the internal database names."""
        sqlglot = _sqlglot()
        if not self._internal:
            return str(sqlglot.transpile(sql, read="databricks", write="duckdb")[0])
        tree = sqlglot.parse_one(sql, read="databricks")
        return str(self.rewrite(tree).sql(dialect="duckdb"))


def _sqlglot() -> Any:
    return require("sqlglot", extra="emulator", purpose="The Genie emulator's SQL transpiling")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
