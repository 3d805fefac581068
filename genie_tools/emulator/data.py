"""The emulator's data: TPC-H generated locally into DuckDB, plus a user's own files.

TPC-H is generated once per scale by ``tpchgen-cli`` (a registry package, so no
download at run time) into a cache folder, loaded into a DuckDB file and
attached read-only as ``samples.tpch`` — the schema every Databricks workspace
has — so Genie's fully qualified SQL runs as written. A user's Parquet and CSV files
are copied into DuckDB files at start-up, and every catalog is then served read-only
from a connection with external access disabled and its configuration locked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.catalogs import CatalogNames
from genie_tools.emulator.config import ConfigError, DataConfig

TPCH_TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")


def default_data_dir() -> Path:
    """The cache folder: ``$GENIE_TOOLS_CACHE_DIR``, else ``$XDG_CACHE_HOME/genie-tools``."""
    explicit = os.environ.get("GENIE_TOOLS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genie-tools"


def _tpchgen_binary() -> str:
    beside_python = Path(sys.executable).parent / "tpchgen-cli"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("tpchgen-cli")
    if found:
        return found
    raise RuntimeError(
        "tpchgen-cli was not found; it ships with the emulator extra: "
        "pip install 'genie-tools[emulator]'"
    )


def ensure_tpch(data_dir: Path, scale: float) -> Path:
    """Return a DuckDB file holding TPC-H at ``scale``, generating it on first use.

    Generation writes to a temporary file and renames it into place, so an
    interrupted or concurrent first start never leaves a half-written database.

    Args:
        data_dir: The cache folder.
        scale: TPC-H scale factor (0.1 is about 100 MB of raw data).

    Returns:
        Path to the DuckDB file (schema ``tpch``).
    """
    duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
    target = data_dir / f"tpch-sf{scale:g}.duckdb"
    if target.exists():
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".tpchgen-") as tmp:
        parquet_dir = Path(tmp) / "parquet"
        subprocess.run(
            [_tpchgen_binary(), "parquet", "-s", f"{scale:g}", "-o", str(parquet_dir)],
            check=True,
            capture_output=True,
        )
        staging = Path(tmp) / "staging.duckdb"
        con = duckdb.connect(str(staging))
        try:
            con.execute("CREATE SCHEMA tpch")
            for table in TPCH_TABLES:
                source = str(parquet_dir / f"{table}.parquet").replace("'", "''")
                con.execute(f"CREATE TABLE tpch.{table} AS SELECT * FROM read_parquet('{source}')")
        finally:
            con.close()
        os.replace(staging, target)
    return target


class Database:
    """The emulator's warehouse: every catalog attached read-only to a locked DuckDB.

    Loading happens first, on connections of its own: TPC-H is generated into its
    cache file, a user's Parquet and CSV files are copied into DuckDB files in a
    private work folder. The serving connection then attaches them read-only, and
    locks itself: external access (files, network, extensions) off, extension
    autoloading off, configuration locked. Whatever SQL reaches it, DuckDB itself
    refuses to read a file, install an extension, attach a database or write one.
    Catalogs DuckDB reserves (``main``…) live under other names (:attr:`names`).
    Each thread gets its own cursor, so queries run in parallel from an executor.

    Raises:
        ConfigError: A file to load or attach is missing or unreadable, or two
            sources claim the same catalog.

    Example:
        >>> db = Database(DataConfig(tpch_scale=None), Path("/tmp"))  # doctest: +SKIP
        >>> db.cursor().execute("SELECT 1").fetchall()  # doctest: +SKIP
        [(1,)]
    """

    def __init__(self, config: DataConfig, data_dir: Path) -> None:
        duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
        self.names = CatalogNames(_catalogs(config))
        self._local = threading.local()
        self._cursor_lock = threading.Lock()
        # The serving database and the user's tables live here until close().
        self._work = tempfile.TemporaryDirectory(
            prefix="genie-emulator-", ignore_cleanup_errors=True
        )
        try:
            work = Path(self._work.name)
            sources = _sources(config, data_dir, work, self.names)
            # An empty read-only file as the default database: nothing can be created
            # in it (only TEMP objects, which vanish with the cursor).
            root = work / "memory.duckdb"
            duckdb.connect(str(root)).close()
            self._con: Any = duckdb.connect(str(root), read_only=True)
        except BaseException:
            self._work.cleanup()
            raise
        try:
            for internal, (path, key) in sources.items():
                _attach(self._con, internal, path, key)
            for statement in LOCKDOWN:
                self._con.execute(statement)
        except BaseException:
            self.close()
            raise

    def cursor(self) -> Any:
        """This thread's cursor."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            # DuckDB refuses (rather than waits) when two threads use the parent at once.
            with self._cursor_lock:
                cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def columns(self, qualified_table: str) -> list[str]:
        """Column names of a table, in order."""
        catalog, schema, table = _split_table(qualified_table)
        rows = (
            self.cursor()
            .execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [self.names.internal(catalog), schema, table],
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def close(self) -> None:
        """Close the connection and remove the loaded copies of the user's files."""
        with contextlib.suppress(Exception):
            self._con.close()
        self._work.cleanup()


LOCKDOWN = (
    "SET GLOBAL TimeZone = 'UTC'",  # results do not depend on the host's zone
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET lock_configuration = true",  # last: nothing above can be SET back
)
"""What the serving connection runs once its catalogs are attached."""


def _catalogs(config: DataConfig) -> list[str]:
    found = ["samples"] if config.tpch_scale is not None else []
    found += list(config.attach)
    found += [q.split(".")[0] for q in config.tables]
    return found


def _sources(
    config: DataConfig, data_dir: Path, work: Path, names: CatalogNames
) -> dict[str, tuple[str, str]]:
    """Every DuckDB file to attach: internal catalog name -> (path, config key)."""
    sources: dict[str, tuple[str, str]] = {}

    def claim(catalog: str, path: str, key: str) -> None:
        internal = names.internal(catalog).lower()
        if internal in sources:
            raise ConfigError(
                f"catalog {catalog!r} is also given by {sources[internal][1]}",
                key=key,
                fix="give each catalog one source: a DuckDB file under data.attach, or "
                "Parquet/CSV files under data.tables",
            )
        sources[internal] = (path, key)

    if config.tpch_scale is not None:
        claim("samples", str(ensure_tpch(data_dir, config.tpch_scale)), "data.tpch_scale")
    for catalog, path in config.attach.items():
        if not Path(path).is_file():
            raise ConfigError(
                f"the DuckDB file {path} does not exist",
                key=f"data.attach.{catalog}",
                fix="point it at an existing DuckDB file (relative paths resolve against "
                "the config file's folder)",
            )
        claim(catalog, path, f"data.attach.{catalog}")
    for catalog, path in _load_tables(config.tables, work, names).items():
        claim(catalog, path, f"data.tables (catalog {catalog})")
    return sources


def _load_tables(tables: dict[str, str], work: Path, names: CatalogNames) -> dict[str, str]:
    """Copy each Parquet/CSV file into a DuckDB file per catalog (a loader connection each).

    Returns:
        Catalog (Unity Catalog name) -> the DuckDB file holding its tables.
    """
    duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
    by_catalog: dict[str, list[tuple[str, str, str, str]]] = {}
    for qualified, path in tables.items():
        key = f"data.tables.{qualified}"
        try:
            catalog, schema, table = _split_table(qualified)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key, fix="name it catalog.schema.table") from None
        if not Path(path).is_file():
            raise ConfigError(
                f"the file {path} does not exist",
                key=key,
                fix="point it at a Parquet or CSV file (relative paths resolve against the "
                "config file's folder)",
            )
        by_catalog.setdefault(catalog, []).append((schema, table, path, key))
    files: dict[str, str] = {}
    for n, (catalog, entries) in enumerate(by_catalog.items()):
        target = work / f"catalog-{n}-{names.internal(catalog)}.duckdb"
        loader = duckdb.connect(str(target))
        try:
            for schema, table, path, key in entries:
                _load_file(loader, schema, table, path, key)
        finally:
            loader.close()
        files[catalog] = str(target)
    return files


def _load_file(loader: Any, schema: str, table: str, path: str, key: str) -> None:
    duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
    csv = path.lower().endswith((".csv", ".csv.gz", ".tsv"))
    reader = "read_csv_auto" if csv else "read_parquet"
    try:
        loader.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        loader.execute(
            f"CREATE TABLE {_ident(schema)}.{_ident(table)} AS "
            f"SELECT * FROM {reader}('{_quote(path)}')"
        )
    except duckdb.Error as exc:
        kind = "CSV" if csv else "Parquet"
        raise ConfigError(
            f"{path} could not be read as {kind}: {_first_line(exc)}",
            key=key,
            fix="give a Parquet file, or a CSV file whose name ends in .csv",
        ) from None


def _attach(con: Any, internal: str, path: str, key: str) -> None:
    duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
    try:
        con.execute(f"ATTACH '{_quote(path)}' AS {_ident(internal)} (READ_ONLY)")
    except duckdb.Error as exc:
        raise ConfigError(
            f"{path} could not be attached: {_first_line(exc)}",
            key=key,
            fix="point it at a DuckDB database file",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _split_table(qualified: str) -> tuple[str, str, str]:
    parts = qualified.split(".")
    if len(parts) != 3:
        raise ValueError(f"table {qualified!r} must be catalog.schema.table")
    return parts[0], parts[1], parts[2]


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
