"""Issue 12, points 2 and 4 through the ``genie-tools`` command.

Errors are one line on stderr (``--json``: one JSON object on stdout), with a non-zero
exit and no traceback unless ``--debug``; a dead workspace fails in seconds; the local
emulator keeps its conversations under ``GENIE_TOOLS_HOME`` so that ``--thread``
continues the same Genie conversation in a new process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genie_tools import WorkspaceUnreachableError
from genie_tools.cli import app
from genie_tools.emulator import GenieEmulator

ROOT = Path(__file__).parent.parent
SECRET = "dapi-do-not-print-0123456789abcdef"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GENIE_"))}
    return {
        **clean,
        "DATABRICKS_CONFIG_FILE": str(tmp_path / "databrickscfg"),
        "GENIE_TOOLS_HOME": str(tmp_path / "home"),
        "GENIE_QPM": "100000",
        **extra,
    }


def _cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "genie_tools.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )
    return done, time.monotonic() - started


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ask_json_on_a_host_that_does_not_resolve_fails_in_seconds(tmp_path: Path) -> None:
    env = _env(tmp_path, DATABRICKS_HOST="https://nonexistent.invalid", DATABRICKS_TOKEN=SECRET)
    done, elapsed = _cli(["ask", "revenue by year", "--json"], env)
    assert elapsed < 30
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "WorkspaceUnreachableError"
    assert error["cause"] == "dns"
    assert "https://nonexistent.invalid" in error["message"]
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_a_closed_port_is_one_line_on_stderr(tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    env = _env(tmp_path, DATABRICKS_HOST=host, DATABRICKS_TOKEN=SECRET)
    done, elapsed = _cli(["ask", "revenue by year"], env)
    assert elapsed < 30
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("Error: WorkspaceUnreachableError: No answer from Genie at " + host)
    assert "connection refused" in line
    assert SECRET not in done.stderr


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_wrong_token_is_one_line_naming_the_host(
    emu: GenieEmulator, tmp_path: Path, as_json: bool
) -> None:
    env = _env(tmp_path, DATABRICKS_HOST=emu.url, DATABRICKS_TOKEN=SECRET)
    done, _ = _cli(["ask", "revenue by year", *(["--json"] if as_json else [])], env)
    assert done.returncode == 1
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if as_json:
        error = json.loads(done.stdout)["error"]
        assert (error["type"], error["status_code"]) == ("AuthenticationError", 401)
        assert emu.url in error["message"]
    else:
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("Error: AuthenticationError: ")
        assert emu.url in line


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(app, args)


def test_an_unknown_space_names_the_argument_given(
    emu: GenieEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = {"DATABRICKS_HOST": emu.url, "DATABRICKS_TOKEN": emu.token}
    described = _run(["spaces", "nope"], monkeypatch, **where)
    assert described.exit_code == 2
    assert "SPACE: unknown space 'nope'" in described.stderr
    assert "--space" not in described.stderr
    asked = _run(["ask", "revenue", "--space", "nope", "--json"], monkeypatch, **where)
    assert asked.exit_code == 2
    error = json.loads(asked.stdout)["error"]
    assert error["type"] == "UsageError"
    assert "--space: unknown space 'nope'" in error["message"]


def test_a_thread_id_is_checked_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(["ask", "revenue", "--thread", "../../etc/passwd", "--json"], monkeypatch)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "--thread" in error["message"]
    assert "not a thread id" in error["message"]


def test_debug_lets_the_error_through(monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    plain = _run(["ask", "revenue"], monkeypatch, DATABRICKS_HOST=host, DATABRICKS_TOKEN=SECRET)
    assert plain.exit_code == 1
    assert plain.exception is None or isinstance(plain.exception, SystemExit)
    debug = _run(["--debug", "ask", "revenue"], monkeypatch)
    assert isinstance(debug.exception, WorkspaceUnreachableError)  # with its traceback


def test_threads_on_the_local_emulator_survive_a_new_process(tmp_path: Path) -> None:
    env = _env(tmp_path)  # no workspace configured: the local emulator answers
    first, _ = _cli(["ask", "revenue by region in 1996", "--json", "--speed", "0"], env)
    assert first.returncode == 0, first.stderr
    turn = json.loads(first.stdout)
    (answer,) = turn["answers"]
    assert "1996" in answer["sql"]
    assert (tmp_path / "home" / "emulator").is_dir()  # the emulator's state, kept

    thread = turn["thread_id"]
    args = ["ask", "only EUROPE", "--thread", thread, "--json", "--speed", "0"]
    second, _ = _cli(args, env)
    assert second.returncode == 0, second.stderr
    (follow,) = json.loads(second.stdout)["answers"]
    assert follow["conversation_id"] == answer["conversation_id"]
    assert not follow["is_clarification"]
    assert "1996" in follow["sql"]
    assert "EUROPE" in follow["sql"]
    assert "gone" not in second.stderr  # the conversation was found, not replaced
    assert json.loads(second.stdout)["elapsed_seconds"] < 5  # no 8 s search
