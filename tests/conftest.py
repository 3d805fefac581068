"""Shared fixtures: a real emulator over loopback, the real SDK, and DuckDB as the referee."""

from __future__ import annotations

import datetime as dt
import decimal
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from genie_tools.emulator import GenieEmulator, evaluation

pytest_plugins = ["pytester", "postgres_fixture"]


@pytest.fixture(autouse=True, scope="session")
def _clean_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the developer's Databricks settings out of the tests."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("DATABRICKS_", "GENIE_"))}
    for key in saved:
        if key != "GENIE_TOOLS_CACHE_DIR":
            del os.environ[key]
    home = tmp_path_factory.mktemp("home")
    os.environ["DATABRICKS_CONFIG_FILE"] = str(home / "databrickscfg")
    os.environ["MLFLOW_TRACKING_URI"] = f"file://{home / 'mlruns'}"
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emu() -> Iterator[GenieEmulator]:
    """One instant, unthrottled emulator for the session (tests must not change its faults)."""
    with GenieEmulator(speed=0, qpm=100_000, seed=7) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def w(emu: GenieEmulator) -> Any:
    """A real ``WorkspaceClient`` talking to the session emulator."""
    return emu.workspace_client()


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., GenieEmulator]]:
    """Start emulators with custom options; they stop after the test."""
    started: list[GenieEmulator] = []

    def make(**options: Any) -> GenieEmulator:
        options.setdefault("speed", 0)
        emulator = GenieEmulator(**options).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture(scope="session")
def sales_space(emu: GenieEmulator) -> str:
    """The id of the "Sales & revenue" space."""
    return next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")


@pytest.fixture(scope="session")
def duckdb_reference(emu: GenieEmulator) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """Run Databricks SQL on an independent DuckDB connection over the same TPC-H file."""
    with evaluation.duckdb_reference(emu) as run:
        yield run


def answer(w: Any, msg: Any) -> tuple[str, Any]:
    """The SQL and ``StatementResponse`` of a Genie answer (fails on a clarification)."""
    from genie_tools.emulator.evaluation import query_of

    found = query_of(w, msg)
    assert found is not None, "expected an answer with SQL"
    return found


def space_id(emu: GenieEmulator, title: str = "Sales & revenue") -> str:
    """The id of a space of ``emu`` by its title."""
    return next(s.id for s in emu.config.spaces if s.title == title)


def parse_wire(value: str | None, type_name: str) -> Any:
    """Turn a ``data_array`` string back into a Python value by its manifest type."""
    if value is None:
        return None
    if type_name in ("INT", "LONG", "SHORT", "BYTE"):
        return int(value)
    if type_name == "DECIMAL":
        return decimal.Decimal(value)
    if type_name in ("DOUBLE", "FLOAT"):
        return float(value)
    if type_name == "DATE":
        return dt.date.fromisoformat(value)
    if type_name == "TIMESTAMP":
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    if type_name == "BOOLEAN":
        return value == "true"
    return value


def assert_same_rows(
    statement: Any, expected: list[tuple[Any, ...]], *, ordered: bool = True
) -> None:
    """Compare a ``StatementResponse`` with DuckDB's own rows, value by value."""
    columns = statement.manifest.schema.columns
    got = [
        tuple(parse_wire(v, c.type_name.value) for v, c in zip(row, columns, strict=True))
        for row in statement.result.data_array or []
    ]
    want = [tuple(_normalise(v) for v in row) for row in expected]
    got = [tuple(_normalise(v) for v in row) for row in got]
    if not ordered:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, decimal.Decimal):
        return round(float(value), 6)
    return value


@pytest.fixture
def fresh_limits() -> Iterator[None]:
    """Per-host rate budgets and breakers start empty and are dropped afterwards.

    They are shared by every client of a host in the process (as in production); tests
    that count questions or waits must not inherit another test's budget.
    """
    from genie_tools.limits import reset_limits

    reset_limits()
    yield
    reset_limits()
