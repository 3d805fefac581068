"""The outer surfaces: CLI arguments, settings from the environment, space declarations
and the emulator's HTTP API (the inner ones, and the registry, are in :mod:`fuzz_surfaces`).
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import httpx
from fuzz_env import TRACEBACK, Finding, FuzzEnv, check_text, environment, unexpected
from fuzz_strategies import http_requests, mostly, odd_text
from hypothesis import reject
from hypothesis import strategies as st
from pydantic import ValidationError

from genie_tools import GenieClient, GenieSettings
from genie_tools.errors import GenieError

__all__ = [
    "check_cli",
    "check_declaration",
    "check_http",
    "check_settings",
    "cli_calls",
    "http_cases",
    "setting_envs",
]

# ---------------------------------------------------------------------------- CLI
CLI_TEXT = st.one_of(
    odd_text(30, surrogates=False).filter(lambda t: "\x00" not in t), st.just("\udcff")
)


@st.composite
def cli_calls(draw: Any, env: FuzzEnv) -> dict[str, Any]:
    """``{"args", "input"}``: a command line (mostly a plausible one) and lines for stdin."""
    near = draw(st.integers(0, 3)) < 3  # mostly what a user would type, with a twist
    commands = (
        ["ask", "ask", "spaces", "chat"]
        if near
        else ["ask", "spaces", "chat", "--help", "nope", ""]
    )
    command = draw(st.sampled_from(commands))
    args = [command] if command else []
    question = mostly(st.sampled_from(env.questions), CLI_TEXT)
    if command == "ask" and (near or draw(st.booleans())):
        args.append(draw(question))
    if command == "spaces" and draw(st.booleans()):
        args.append(draw(mostly(st.sampled_from(env.space_ids + env.space_names), CLI_TEXT)))
    values = {
        "--space": mostly(st.sampled_from(env.space_ids + env.space_names), CLI_TEXT),
        "--thread": mostly(st.sampled_from(["ask-1a2b3c4d", "chat-00000001"]), CLI_TEXT),
        "--db": st.sampled_from(
            [
                str(env.workdir / "cli.db"),
                "nosuch://x",
                f"sqlite:///{env.workdir}/cli2.db",
                str(env.workdir / "missing-dir" / "x.db"),
                "",
            ]
        ),
        "--speed": mostly(st.just("0"), st.sampled_from(["-1", "nan", "inf", "abc", "1e308"])),
        "--profile": mostly(st.just("DEFAULT"), CLI_TEXT),
    }
    usual = {
        "ask": ["--space", "--thread", "--json", "--db"],
        "spaces": ["--json"],
        "chat": ["--thread", "--db"],
    }
    options = (
        usual.get(command, []) if near else [*sorted(values), "--json", "--debug", "--bogus", "--"]
    )
    for option in draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
        args.append(option)
        if option in values:
            args.append(draw(values[option]))
    lines = draw(
        st.lists(mostly(st.sampled_from(env.questions), odd_text(30, surrogates=False)), max_size=2)
    )
    return {"args": args, "input": "\n".join([*lines, "exit", ""])}  # stdin: no surrogates


def check_cli(env: FuzzEnv, case: dict[str, Any]) -> str:
    """The CLI ends with an exit code and a message: no traceback, no token."""
    from typer.testing import CliRunner

    from genie_tools.cli import app

    variables = {
        "DATABRICKS_HOST": env.url,
        "DATABRICKS_TOKEN": env.token,
        "DATABRICKS_CONFIG_FILE": str(env.workdir / "no-databrickscfg"),
        "GENIE_TOOLS_HOME": str(env.workdir / "home"),
        "GENIE_QPM": "100000",
        "GENIE_SUBMIT_RECOVERY_SECONDS": "0.3",
        "GENIE_TIMEOUT": "20",
    }
    surface = f"cli/{case['args'][0] if case['args'] else '(none)'}"
    with environment(variables), env.log.recording():
        result = CliRunner().invoke(app, case["args"], input=case["input"], catch_exceptions=True)
    env.log.check(surface, env.url, secret=env.token)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise unexpected(surface, result.exception)
    if result.exit_code not in (0, 1, 2):
        raise Finding(f"{surface}: exit code {result.exit_code}", result.output[-300:])
    options = case["args"][: case["args"].index("--")] if "--" in case["args"] else case["args"]
    if "--debug" in options:  # tracebacks are what --debug is for; the token never is
        if env.token in result.output:
            raise Finding(f"{surface}: the token in the --debug output", result.output[-300:])
    else:
        check_text(surface, env, result.output, "output")
    if result.exit_code == 1 and "--debug" not in options:
        _check_error_output(surface, result, as_json="--json" in options)
    return f"{surface}: exit {result.exit_code}"


def _check_error_output(surface: str, result: Any, *, as_json: bool) -> None:
    """A failed command says why in one line, or as a JSON object with ``error`` (--json)."""
    if as_json:
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        try:
            error = json.loads(lines[-1])["error"]
            if not (isinstance(error["type"], str) and isinstance(error["message"], str)):
                raise TypeError("error.type and error.message must be text")
        except (IndexError, ValueError, KeyError, TypeError):
            raise Finding(
                f"{surface}: --json failed without a JSON error", result.output[-300:]
            ) from None
    elif len([line for line in result.stderr.splitlines() if line.strip()]) > 1:
        raise Finding(f"{surface}: an error of more than one line", result.stderr[-300:])


# ---------------------------------------------------------------------------- settings
def _plausible_setting(env: FuzzEnv, name: str) -> st.SearchStrategy[str]:
    """A value a user would set for the field ``name``."""
    kind = str(GenieSettings.model_fields[name].annotation)
    special = {
        "host": st.sampled_from(["https://adb-1.2.azuredatabricks.net", "http://127.0.0.1:8765"]),
        "profile": st.just("DEFAULT"),
        "space_id": st.sampled_from(env.space_ids),
        "space_ids": st.lists(st.sampled_from(env.space_ids), min_size=1, max_size=2).map(",".join),
        "rate_burst": st.integers(1, 5).map(str),
    }
    if name in special:
        return special[name]
    if "bool" in kind:
        return st.sampled_from(["true", "false", "1", "0"])
    if "int" in kind:
        return st.integers(5, 50).map(str)
    return st.sampled_from(["0.5", "1", "2.5", "10", "30"])


@st.composite
def setting_envs(draw: Any, env: FuzzEnv) -> dict[str, str]:
    """Up to three ``GENIE_*`` variables, each mostly plausible for its field."""
    hostile = st.one_of(
        st.sampled_from(
            [
                "nan",
                "inf",
                "-inf",
                "-1",
                "0",
                "1e309",
                "1e-320",
                "",
                " ",
                "null",
                "[]",
                "{}",
                "1,2",
                "a, ,b",
                "../x",
                "http://example.com",
                "https://x",
                "http://127.0.0.1:1",
                "https://user:pw@host",
                "100000",
                "100001",
                "0x10",
                "1_000",
                "true",
            ]
        ),
        odd_text(20, surrogates=False).filter(lambda t: "\x00" not in t),
        st.integers().map(str),
    )
    names = draw(st.lists(st.sampled_from([*GenieSettings.model_fields, "nope"]), max_size=3))
    variables = {}
    for name in names:
        plausible = _plausible_setting(env, name) if name != "nope" else st.just("1")
        variables[f"GENIE_{name.upper()}"] = draw(mostly(plausible, hostile))
    return variables


def check_settings(env: FuzzEnv, variables: dict[str, str]) -> str:
    """GENIE_* variables give settings or a ValidationError; valid ones make a client."""
    try:
        scope = environment(variables)
        scope.__enter__()
    except (ValueError, UnicodeEncodeError):
        reject()  # the OS cannot hold this value in the environment
    try:
        try:
            settings = GenieSettings()
        except ValidationError as err:
            check_text("settings", env, str(err), "error message")
            return "ValidationError"
        except Exception as exc:
            raise unexpected("settings", exc) from exc
        for workspace in (env.w, None):
            try:
                GenieClient(workspace, settings=settings).close()
            except GenieError as err:
                check_text("settings", env, str(err), "error message")
                return f"settings, then {type(err).__name__}"
            except Exception as exc:
                raise unexpected("settings/client", exc) from exc
        return "settings and clients"
    finally:
        scope.__exit__(None, None, None)


# ---------------------------------------------------------------------------- declarations
_files = itertools.count()


def check_declaration(env: FuzzEnv, case: tuple[str, str]) -> str:
    """An emulator configuration loads and answers, or fails with one ConfigError."""
    from genie_tools.emulator import GenieEmulator
    from genie_tools.emulator.config import ConfigError

    path = env.workdir / f"declaration-{next(_files)}.yaml"
    path.write_text(case[1], encoding="utf-8")
    try:
        emu = GenieEmulator(config=path, speed=0, data_dir=env.emu.data_dir).start()
    except ConfigError as err:
        # the file at fault: this one, or the spaces_file it names
        if not err.file or err.file not in str(err):
            raise Finding(
                "declarations: a ConfigError that names no file", str(err)[:300]
            ) from None
        return f"ConfigError at {err.problems[0].key.split('.')[0].split('[')[0]}"
    except Exception as exc:
        raise unexpected("declarations", exc) from exc
    try:
        _ask_emulator(emu)
    finally:
        emu.stop()
    return f"started with {len(emu.config.spaces)} spaces"


def _ask_emulator(emu: Any) -> None:
    """One question in each of the emulator's first two spaces: never a 5xx."""
    auth = {"Authorization": f"Bearer {emu.token}"}
    with httpx.Client(base_url=emu.url, headers=auth, timeout=30) as http:
        for space in emu.config.spaces[:2]:
            question = (space.sample_questions or ["How many rows are there?"])[0]
            where = f"/api/2.0/genie/spaces/{quote(space.id, safe='')}"
            r = http.post(f"{where}/start-conversation", json={"content": question})
            if r.status_code >= 500:
                raise Finding(
                    f"declarations: {r.status_code} asking a declared space", r.text[:300]
                )
            if r.is_success:
                body = r.json()
                path = (
                    f"{where}/conversations/{body['conversation_id']}/messages/{body['message_id']}"
                )
                got = http.get(path)
                if got.status_code >= 500:
                    raise Finding(
                        f"declarations: {got.status_code} reading an answer", got.text[:300]
                    )


# ---------------------------------------------------------------------------- HTTP API
def check_http(env: FuzzEnv, case: dict[str, Any]) -> str:
    """A raw request never gets a 5xx (nor a traceback) from the emulator."""
    http: httpx.Client = env.__dict__.setdefault("http", httpx.Client(timeout=20))
    url = env.url + case["path"] + (f"?{case['query']}" if case["query"] else "")
    try:
        response = http.request(case["method"], url, headers=case["headers"], content=case["body"])
    except (httpx.InvalidURL, httpx.LocalProtocolError, httpx.UnsupportedProtocol, UnicodeError):
        reject()  # httpx cannot send it: not the emulator's concern
    except httpx.TransportError as exc:
        raise Finding(
            f"http: {type(exc).__name__} on {case['method']} {case['route']}", str(exc)
        ) from exc
    finally:
        env.emu.clear_faults()  # an admin request may have armed one: the next is clean
    if response.status_code >= 500:
        code = response.headers.get("content-type", "")
        with_code = response.json().get("error_code") if "json" in code else response.text[:80]
        raise Finding(
            f"http: {response.status_code} {with_code} on {case['method']} {case['route']}",
            f"{case['method']} {case['path'][:200]} headers={case['headers']} "
            f"body={case['body']!r:.300}",
        )
    if TRACEBACK in response.text:
        raise Finding(f"http: a traceback in the answer to {case['method']} {case['route']}")
    if "root:x:0:0" in response.text:  # read_csv('/etc/passwd') and the like
        raise Finding(f"http: a local file in the answer to {case['method']} {case['route']}")
    ordinary = case["headers"].get("Authorization") == f"Bearer {env.user_token}".encode()
    if ordinary and case["path"].startswith("/emulator/admin") and response.is_success:
        raise Finding(
            f"http: an ordinary user used the admin API: {case['method']} {case['route']}"
        )
    return f"HTTP {response.status_code}"


def http_cases(env: FuzzEnv) -> st.SearchStrategy[dict[str, Any]]:
    """Raw requests to the emulator, with the ids of the environment's real answer."""
    # the answer's own space: the conversation and message ids belong to it
    return http_requests(
        {**env.real_ids, "space": [env.answer.space_id]}, env.token, env.user_token
    )
