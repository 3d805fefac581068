"""The ``genie-tools`` command (emulator, emulator eval, demo) and the pytest plugin."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from genie_tools.emulator.data import default_data_dir
from genie_tools.emulator.results import to_wire

GENIE_TOOLS = str(Path(sys.executable).parent / "genie-tools")
# Computed at import, before pytester points HOME at a temporary folder.
CACHE_DIR = str(default_data_dir())
LISTENING = re.compile(r"Genie emulator listening on (http://127\.0\.0\.1:(\d+))")
REVENUE_BY_YEAR = """
SELECT year(o.o_orderdate) AS order_year,
       SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
FROM samples.tpch.orders o
JOIN samples.tpch.lineitem l ON l.l_orderkey = o.o_orderkey
GROUP BY year(o.o_orderdate)
ORDER BY order_year
"""


class Server:
    """A ``genie-tools emulator`` subprocess with its stdout read on a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [GENIE_TOOLS, "emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GENIE_TOOLS_CACHE_DIR": CACHE_DIR},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_lines(self, n: int, timeout: float = 60.0) -> list[str]:
        deadline = time.time() + timeout
        while len(self.lines) < n and time.time() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                break
            time.sleep(0.02)
        if len(self.lines) < n:
            stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise AssertionError(f"expected {n} lines, got {self.lines!r}; stderr: {stderr}")
        return self.lines[:n]

    def interrupt(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIGINT; returns (exit code, stderr); fails if it takes longer than ``timeout``."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the emulator did not exit within {timeout} s of SIGINT"
            ) from None
        self._reader.join(timeout=5)
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# A one-table space with one example, for the commands that take a config or spaces file.
ORDERS_SPACE = {
    "id": "cli-orders",
    "title": "CLI orders",
    "tables": [{"name": "samples.tpch.orders"}],
    "example_sqls": [
        {
            "question": "How many orders are there?",
            "sql": "SELECT COUNT(*) AS n FROM samples.tpch.orders",
        }
    ],
}


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


def _address(server: Server) -> tuple[str, str]:
    first, second = server.wait_lines(2)
    match = LISTENING.fullmatch(first)
    assert match, first
    assert int(match.group(2)) > 0
    token_line = re.fullmatch(r"\s*token: (\S+)", second)
    assert token_line, second
    return match.group(1), token_line.group(1)


def _client(url: str, token: str) -> WorkspaceClient:
    return WorkspaceClient(
        config=Config(host=url, token=token, auth_type="pat", retry_timeout_seconds=5)
    )


def test_emulator_command_serves_the_sdk_and_stops_on_sigint(serve: Callable[..., Server]) -> None:
    server = serve("--port", "0", "--speed", "0")
    url, token = _address(server)
    w = _client(url, token)
    spaces = w.genie.list_spaces().spaces
    assert [s.title for s in spaces] == ["Sales & revenue", "Supply chain", "Shipping & returns"]
    # The banner names every space by id.
    lines = server.wait_lines(3 + len(spaces))
    for space in spaces:
        assert f"  space {space.space_id}  {space.title}" in lines
    # A wrong token is refused: the printed token is the one that works.
    unauthorized = httpx.get(
        f"{url}/api/2.0/genie/spaces", headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert unauthorized.status_code == 401

    code, stderr = server.interrupt()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/2.0/genie/spaces", timeout=2)


def test_sigint_while_a_query_runs(serve: Callable[..., Server], tmp_path: Path) -> None:
    # A deliberately heavy example query keeps a DuckDB cursor busy while we interrupt.
    heavy = (
        "SELECT COUNT(*) AS n, SUM(l.l_extendedprice * a.n_nationkey * b.n_regionkey) AS s "
        "FROM samples.tpch.lineitem l CROSS JOIN samples.tpch.nation a "
        "CROSS JOIN samples.tpch.nation b"
    )
    config = {
        "spaces": [
            {
                "id": "heavy",
                "title": "Heavy",
                "tables": [
                    {"name": "samples.tpch.lineitem"},
                    {"name": "samples.tpch.nation"},
                ],
                "example_sqls": [{"question": "Run the heavy query", "sql": heavy}],
            }
        ]
    }
    path = tmp_path / "heavy.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    server = serve("--port", "0", "--speed", "0", "--config", str(path))
    url, token = _address(server)
    w = _client(url, token)
    started = w.genie.start_conversation("heavy", "Run the heavy query").response
    time.sleep(0.2)
    status = w.genie.get_message("heavy", started.conversation_id, started.message_id).status
    assert status.value == "EXECUTING_QUERY"
    code, stderr = server.interrupt()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "FATAL" not in stderr


def test_emulator_command_honours_config_and_qpm(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    config = {"limits": {"qpm": 2}, "spaces": [ORDERS_SPACE]}
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    server = serve("--port", "0", "--speed", "0", "--config", str(path), "--qpm", "7")
    url, token = _address(server)
    w = _client(url, token)
    assert [(s.space_id, s.title) for s in w.genie.list_spaces().spaces] == [
        ("cli-orders", "CLI orders")
    ]
    ask = f"{url}/api/2.0/genie/spaces/cli-orders/start-conversation"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        codes = [
            http.post(ask, json={"content": "How many orders are there?"}).status_code
            for _ in range(7)
        ]
        assert codes == [200] * 7
        limited = http.post(ask, json={"content": "How many orders are there?"})
    assert limited.status_code == 429
    assert "the workspace limit is 7 per 60 s" in limited.json()["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    code, stderr = server.interrupt()
    assert code == 0, stderr


def test_demo_prints_sql_and_duckdb_figures(
    duckdb_reference: Callable[[str], list[tuple[Any, ...]]],
) -> None:
    done = subprocess.run(
        [GENIE_TOOLS, "demo", "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GENIE_TOOLS_CACHE_DIR": CACHE_DIR, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the analyst's tour: a routed question, a follow-up, a cross-space question
    assert "What was total revenue by year?" in out
    assert "routed to Sales & revenue (match)" in out
    assert "routed to Sales & revenue (follow-up)" in out
    assert "routed to Supply chain, Sales & revenue (several)" in out
    assert "SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue" in out
    assert "SUM(ps.ps_supplycost * ps.ps_availqty) AS inventory_value" in out
    assert "Analyst:" in out
    assert "demo done in" in out
    rows = duckdb_reference(REVENUE_BY_YEAR)
    assert len(rows) == 7
    for year, revenue in rows:
        assert str(year) in out
        assert to_wire(revenue) in out, (to_wire(revenue), out)


PLUGIN_TESTS = """
import httpx
import pytest

seen = []


def test_default_fixture(genie_emulator):
    w = genie_emulator.workspace_client()
    titles = [s.title for s in w.genie.list_spaces().spaces]
    assert titles == ["Sales & revenue", "Supply chain", "Shipping & returns"]
    assert genie_emulator.speed == 0
    space = next(s for s in genie_emulator.config.spaces if s.title == "Sales & revenue")
    msg = w.genie.start_conversation_and_wait(space.id, "How many orders were placed in 1996?")
    assert msg.status.value == "COMPLETED"
    seen.append(genie_emulator.url)


@pytest.mark.genie_emulator(qpm=3)
def test_marker_options(genie_emulator):
    assert genie_emulator.config.limits.qpm == 3
    assert genie_emulator.url != seen[0]


def test_previous_emulator_was_stopped():
    with pytest.raises(httpx.ConnectError):
        httpx.get(seen[0] + "/api/2.0/genie/spaces", timeout=2)
"""


def test_pytest_plugin_fixture_and_marker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENIE_TOOLS_CACHE_DIR", CACHE_DIR)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_plugin_use=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_marker_options PASSED*"])


TINY_EVAL = """
version: 1
cases:
  - id: region-then-1996
    space: "Sales & revenue"
    shape: follow_up
    turns:
      - question: "What was total revenue for each region?"
        sql: |
          SELECT r.r_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
          FROM samples.tpch.orders o
          JOIN samples.tpch.lineitem l ON l.l_orderkey = o.o_orderkey
          JOIN samples.tpch.customer c ON c.c_custkey = o.o_custkey
          JOIN samples.tpch.nation n ON n.n_nationkey = c.c_nationkey
          JOIN samples.tpch.region r ON r.r_regionkey = n.n_regionkey
          GROUP BY r.r_name
      - question: "only 1996"
        sql: |
          SELECT r.r_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
          FROM samples.tpch.orders o
          JOIN samples.tpch.lineitem l ON l.l_orderkey = o.o_orderkey
          JOIN samples.tpch.customer c ON c.c_custkey = o.o_custkey
          JOIN samples.tpch.nation n ON n.n_nationkey = c.c_nationkey
          JOIN samples.tpch.region r ON r.r_regionkey = n.n_regionkey
          WHERE o.o_orderdate >= DATE '1996-01-01' AND o.o_orderdate < DATE '1997-01-01'
          GROUP BY r.r_name
  - id: orders-wrong-year
    space: "Sales & revenue"
    shape: count
    turns:
      - question: "How many orders were placed in 1996?"
        # deliberately the wrong year: this turn must be reported as a miss
        sql: SELECT COUNT(*) FROM samples.tpch.orders WHERE year(o_orderdate) = 1995
  - id: weather
    space: "Supply chain"
    shape: out_of_scope
    turns:
      - question: "What's the weather going to be like in Rotterdam tomorrow?"
        sql: null
"""


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GENIE_TOOLS, "emulator", "eval", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GENIE_TOOLS_CACHE_DIR": CACHE_DIR, "COLUMNS": "200"},
    )


@pytest.fixture
def tiny_eval(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_EVAL, encoding="utf-8")
    return path


def test_eval_command_prints_the_table_and_the_misses(tiny_eval: Path) -> None:
    done = _eval(str(tiny_eval), "--misses")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| space: Sales & revenue | 2/3 (67%) | - |" in out
    assert "| space: Supply chain | - | 1/1 (100%) |" in out
    assert "| shape: follow_up | 2/2 (100%) | - |" in out
    assert "| shape: count | 0/1 (0%) | - |" in out
    assert "| **all** | **2/3 (66.7%)** | **1/1 (100.0%)** |" in out
    assert "1 missed turns:" in out
    assert (
        "orders-wrong-year#0 (in scope) 'How many orders were placed in 1996?': different result"
    ) in out
    given = out.split("  given:\n", 1)[1].split("  expected:\n", 1)[0]
    assert "samples.tpch.orders" in given
    assert "1996" in given
    assert "year(o_orderdate) = 1995" in out.split("  expected:\n", 1)[1]
    assert "4 turns of 3 cases in" in out


def test_eval_command_json_summary(tiny_eval: Path) -> None:
    done = _eval(str(tiny_eval), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["file"] == str(tiny_eval)
    assert (summary["cases"], summary["turns"]) == (3, 4)
    assert summary["in_scope"] == {"correct": 2, "total": 3, "accuracy": pytest.approx(2 / 3)}
    assert summary["out_of_scope"] == {"clarified": 1, "total": 1, "rate": 1.0}
    assert summary["by_space"]["Supply chain"] == {
        "in_scope": {"correct": 0, "total": 0},
        "out_of_scope": {"clarified": 1, "total": 1},
    }
    assert summary["by_shape"]["follow_up"]["in_scope"] == {"correct": 2, "total": 2}
    [miss] = summary["misses"]
    assert (miss["case"], miss["turn"], miss["detail"]) == (
        "orders-wrong-year",
        0,
        "different result",
    )
    assert miss["question"] == "How many orders were placed in 1996?"
    assert "1996" in miss["sql"]
    assert miss["correct"] is False


def test_eval_command_with_own_spaces(tmp_path: Path) -> None:
    spaces = {"spaces": [ORDERS_SPACE]}
    cases = {
        "cases": [
            {
                "id": "count",
                "space": "CLI orders",
                "shape": "count",
                "turns": [
                    {
                        "question": "How many orders are there?",
                        "sql": "SELECT COUNT(*) FROM samples.tpch.orders",
                    }
                ],
            }
        ]
    }
    (tmp_path / "spaces.yaml").write_text(yaml.safe_dump(spaces), encoding="utf-8")
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cases), encoding="utf-8")
    # the bundled spaces do not have it: a usage error naming what to do
    refused = _eval(str(tmp_path / "eval.yaml"))
    assert refused.returncode == 2
    assert "asks spaces the emulator does not have: ['CLI orders']" in refused.stderr
    assert "--spaces" in refused.stderr
    done = _eval(str(tmp_path / "eval.yaml"), "--spaces", str(tmp_path / "spaces.yaml"), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["in_scope"]["correct"] == summary["in_scope"]["total"] == 1
    assert summary["misses"] == []


def test_eval_command_refuses_a_missing_or_invalid_file(tmp_path: Path) -> None:
    missing = _eval(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    assert "give the path of an eval set like tests/eval/nl2sql.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr
    for name, text in [
        ("broken.yaml", "cases: [\n"),  # not YAML
        ("shapeless.yaml", "cases:\n  - id: x\n    space: Supply chain\n"),  # not an eval set
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        invalid = _eval(str(tmp_path / name))
        assert invalid.returncode == 2, invalid.stdout
        assert f"{tmp_path / name} is not an eval set like tests/eval/nl2sql.yaml" in (
            invalid.stderr
        )
        assert "Traceback" not in invalid.stderr
    # serving options before the subcommand would be ignored: refused instead
    misplaced = subprocess.run(
        [GENIE_TOOLS, "emulator", "--speed", "1", "eval", str(tmp_path / "broken.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert misplaced.returncode == 2
    assert "--speed: serving options, which 'eval' does not take" in misplaced.stderr
