"""The emulator's data: TPC-H generated locally into DuckDB, plus a user's own files.

TPC-H is generated once per scale by ``tpchgen-cli`` (a registry package, so no
download at run time) into a cache folder, loaded into a DuckDB file and
attached read-only as ``samples.tpch`` — the schema every Databricks workspace
has — so Genie's fully qualified SQL runs as written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from genie_tools._optional import require
from genie_tools.emulator.config import DataConfig

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
    """A DuckDB connection with the configured catalogs attached, read-only.

    Each thread gets its own cursor, so queries run in parallel from an executor.
    """

    def __init__(self, config: DataConfig, data_dir: Path) -> None:
        duckdb = require("duckdb", extra="emulator", purpose="The Genie emulator")
        self._con: Any = duckdb.connect(":memory:")
        self._local = threading.local()
        self._cursor_lock = threading.Lock()
        if config.tpch_scale is not None:
            tpch = ensure_tpch(data_dir, config.tpch_scale)
            self._con.execute(f"ATTACH '{_quote(str(tpch))}' AS samples (READ_ONLY)")
        for catalog, path in config.attach.items():
            self._con.execute(f"ATTACH '{_quote(path)}' AS {_ident(catalog)} (READ_ONLY)")
        self._attach_files(config.tables)

    def _attach_files(self, tables: dict[str, str]) -> None:
        created: set[str] = set()
        for qualified, path in tables.items():
            catalog, schema, table = _split_table(qualified)
            if catalog not in created:
                self._con.execute(f"ATTACH ':memory:' AS {_ident(catalog)}")
                created.add(catalog)
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(catalog)}.{_ident(schema)}")
            reader = (
                "read_csv_auto" if path.lower().endswith((".csv", ".csv.gz")) else "read_parquet"
            )
            self._con.execute(
                f"CREATE VIEW {_ident(catalog)}.{_ident(schema)}.{_ident(table)} AS "
                f"SELECT * FROM {reader}('{_quote(path)}')"
            )

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
                [catalog, schema, table],
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def close(self) -> None:
        """Close the connection."""
        self._con.close()


def _split_table(qualified: str) -> tuple[str, str, str]:
    parts = qualified.split(".")
    if len(parts) != 3:
        raise ValueError(f"table {qualified!r} must be catalog.schema.table")
    return parts[0], parts[1], parts[2]


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
