"""The emulator under hostile or careless input (issue 12): 4xx not 5xx, a locked DuckDB,
admin-only admin API, statements limited to a principal's spaces, reserved catalog names,
one clear configuration error, and conversations that survive a restart.

Everything runs for real: the emulator over loopback, the Databricks SDK, DuckDB.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.dashboards import MessageStatus
from databricks.sdk.service.sql import StatementState
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genie_tools.emulator import GenieEmulator
from genie_tools.emulator.bodies import MAX_BODY_BYTES
from genie_tools.emulator.config import ConfigError, EmulatorConfig
from genie_tools.emulator.statements import statement_store
from genie_tools.settings import check_host

MakeEmulator = Callable[..., GenieEmulator]
ROOT = Path(__file__).resolve().parent.parent
WAIT = dt.timedelta(seconds=30)
SPACES = "/api/2.0/genie/spaces"
STATEMENTS = "/api/2.0/sql/statements"
ADMIN = ("/emulator/admin/stats", "/emulator/admin/events")


def _http(emu: GenieEmulator, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or emu.token}"}
    return httpx.Client(base_url=emu.url, headers=headers, timeout=30)


def _sales(emu: GenieEmulator) -> str:
    return next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")


def _orders_file(folder: Path, rows: int = 10) -> Path:
    """A Parquet file of orders (order_id, amount), written by DuckDB."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "orders.parquet"
    duckdb.sql(
        f"COPY (SELECT range AS order_id, range * 1.5 AS amount FROM range(1, {rows + 1})) "
        f"TO '{path}' (FORMAT parquet)"
    )
    return path


# --------------------------------------------------------------------------- admin API
def test_admin_api_is_for_admins_only(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(
        config={
            "principals": {
                "bob@example.com": {"token": "bob-token"},
                "ops@example.com": {"token": "ops-token", "admin": True},
            }
        }
    )
    fault = {"kind": "http_error", "status": 503, "count": 1000}
    with _http(emu, "bob-token") as bob:
        for path in ADMIN:
            refused = bob.get(path)
            assert refused.status_code == 403
            assert refused.json()["error_code"] == "PERMISSION_DENIED"
            assert "admin: true" in refused.json()["message"]
        assert bob.post("/emulator/admin/faults", json=fault).status_code == 403
        assert bob.delete("/emulator/admin/faults").status_code == 403
        # bob's refused fault broke nobody: his own Genie calls still work
        assert bob.get(SPACES).status_code == 200
    assert emu.service.faults.pending() == []
    for token in (emu.token, "ops-token"):  # the default user, and one marked admin
        with _http(emu, token) as admin:
            assert all(admin.get(path).status_code == 200 for path in ADMIN)


# --------------------------------------------------------------------------- malformed requests
def test_deeply_nested_json_is_400(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    deep = "[" * 100_000 + "]" * 100_000
    moderately = '{"content": ' + "[" * 200 + "]" * 200 + "}"
    targets = [
        f"{SPACES}/{_sales(emu)}/start-conversation",
        STATEMENTS,
        "/emulator/admin/faults",
    ]
    with _http(emu) as client:
        for path in targets:
            for body in (deep, moderately):
                r = client.post(path, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 400, (path, r.text)
                assert r.json()["error_code"] == "MALFORMED_REQUEST"


@pytest.mark.parametrize("secret", ["sécret", "秘密", "\u00ff" * 40])
def test_non_ascii_client_secret_is_401(make_emulator: MakeEmulator, secret: str) -> None:
    emu = make_emulator()
    form = {"grant_type": "client_credentials", "client_id": emu.client_id}
    r = httpx.post(f"{emu.url}/oidc/v1/token", data={**form, "client_secret": secret})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    basic = httpx.post(
        f"{emu.url}/oidc/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(emu.client_id, secret),
    )
    assert basic.status_code == 401, basic.text
    right = httpx.post(
        f"{emu.url}/oidc/v1/token", data={**form, "client_secret": emu.client_secret}
    )
    assert right.status_code == 200


def test_malformed_requests_are_4xx(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    start = f"{SPACES}/{_sales(emu)}/start-conversation"
    json_type = {"Content-Type": "application/json"}
    digits = "9" * 5000  # int() refuses more than 4,300 digits
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", start, {"content": b"[1, 2]", "headers": json_type}),
        ("POST", start, {"content": b'"just a string"', "headers": json_type}),
        ("POST", start, {"content": b'{"content": "\xff\xfe"}', "headers": json_type}),
        ("POST", start, {"content": b'{"content": 1' + b"0" * 5000 + b"}", "headers": json_type}),
        ("POST", start, {"json": {"content": 123}}),
        ("POST", start, {"json": {"content": ["a"]}}),
        ("POST", start, {"files": {"content": ("q.txt", b"revenue")}}),  # multipart
        ("POST", start, {"content": b"<q>revenue</q>", "headers": {"Content-Type": "text/xml"}}),
        ("POST", STATEMENTS, {"json": {"statement": ["SELECT 1"], "warehouse_id": "w"}}),
        (
            "POST",
            STATEMENTS,
            {"json": {"statement": "SELECT 1", "warehouse_id": "w", "row_limit": "x"}},
        ),
        ("POST", STATEMENTS, {"json": {"statement": "SELECT 1", "warehouse_id": 5}}),
        (
            "POST",
            STATEMENTS,
            {"json": {"statement": "SELECT 1", "warehouse_id": "w", "parameters": [[{}]]}},
        ),
        ("POST", "/emulator/admin/faults", {"json": {"kind": {"nested": True}}}),
        ("GET", f"{SPACES}?page_token=-5", {}),
        ("GET", f"{SPACES}?page_size={digits}", {}),
        ("GET", f"{STATEMENTS}/01ef0000-0000-0000-0000-000000000000/result/chunks/{digits}", {}),
        ("GET", f"/emulator/download/statements/x/{digits}?expires=1&sig=%C3%A9", {}),
        ("GET", "/emulator/download/statements/x/0?expires=9999999999&sig=%C3%A9", {}),
        ("GET", "/emulator/download/x/0?sig=%C3%A9%E2%82%AC", {}),
    ]
    with _http(emu) as client:
        for method, path, options in cases:
            r = client.request(method, path, **options)
            assert 400 <= r.status_code < 500, (method, path, options, r.status_code, r.text)
            assert "error_code" in r.json() or "error" in r.json(), r.text
        # JSON is UTF-8 whatever charset the header claims (aiohttp's own reader failed: 500).
        odd_charset = {"Content-Type": "application/json; charset=nope"}
        r = client.post(start, content=b'{"content": ""}', headers=odd_charset)
        assert r.status_code == 400
        assert "non-empty" in r.json()["message"]
        huge = client.post(start, content=b" " * (MAX_BODY_BYTES + 1), headers=json_type)
        assert huge.status_code == 413
        assert huge.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    # The form of an OAuth token request, malformed the same ways.
    for options in (
        {
            "content": b"--x\r\nbroken",
            "headers": {"Content-Type": "multipart/form-data; boundary=x"},
        },
        {
            "content": b"grant_type=client_credentials",
            "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=nope"},
        },
    ):
        r = httpx.post(f"{emu.url}/oidc/v1/token", **options)  # type: ignore[arg-type]
        assert 400 <= r.status_code < 500, (options, r.text)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        key: _JSON
        for key in (
            "content statement warehouse_id wait_timeout row_limit byte_limit disposition "
            "format parameters catalog schema on_wait_timeout rating comment kind status count"
        ).split()
    },
)


@pytest.fixture(scope="module")
def fuzzed() -> Any:
    """An emulator of its own: bodies that happen to be valid may arm faults or ask."""
    with GenieEmulator(speed=0, qpm=100_000, seed=3) as emulator:
        yield emulator


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        # json.dumps, not httpx's json=: NaN and Infinity are sent as Python writes them.
        (_FIELDS | _JSON).map(json.dumps),
        st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n),  # nesting
        st.binary(max_size=64).map(lambda b: b.decode("latin-1")),  # not JSON, or not UTF-8
    ),
    route=st.sampled_from(["start", "message", "statement", "feedback", "fault"]),
)
def test_no_json_body_gets_a_5xx(fuzzed: GenieEmulator, body: str, route: str) -> None:
    """Whatever body a client sends to a POST route, the answer is never a server error."""
    space = _sales(fuzzed)
    fake = "0" * 32
    paths = {
        "start": f"{SPACES}/{space}/start-conversation",
        "message": f"{SPACES}/{space}/conversations/{fake}/messages",
        "statement": STATEMENTS,
        "feedback": f"{SPACES}/{space}/conversations/{fake}/messages/{fake}/feedback",
        "fault": "/emulator/admin/faults",
    }
    with _http(fuzzed) as client:
        content = body.encode("utf-8", "surrogatepass")
        r = client.post(paths[route], content=content, headers={"Content-Type": "application/json"})
    fuzzed.clear_faults()
    assert r.status_code < 500, (route, body, r.status_code, r.text)


# --------------------------------------------------------------------------- DuckDB locked down
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "ATTACH '{tmp}/attack.duckdb' AS attack",
        "COPY (SELECT 1 AS x) TO '{tmp}/attack.csv'",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "CREATE TABLE samples.tpch.evil AS SELECT 1 AS x",
        "CREATE TABLE evil AS SELECT 1 AS x",
    ],
)
def test_duckdb_itself_refuses_files_extensions_attach_and_writes(
    emu: GenieEmulator, sql: str, tmp_path: Path
) -> None:
    """The connections Genie's SQL and the statements run on refuse whatever the SQL."""
    sql = sql.replace("{tmp}", str(tmp_path))
    genie_cursor = emu.service.db.cursor()  # what GenieService.run_sql uses
    statement_connection = genie_cursor.cursor()  # what a statement gets (StatementStore.run)
    for con in (genie_cursor, statement_connection):
        with pytest.raises(duckdb.Error) as refused:
            con.execute(sql)
        assert isinstance(
            refused.value,
            duckdb.PermissionException | duckdb.InvalidInputException | duckdb.CatalogException,
        ), refused.value
    statement_connection.close()
    settings_now = dict(
        genie_cursor.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'autoload_known_extensions', "
            "'autoinstall_known_extensions')"
        ).fetchall()
    )
    assert settings_now == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
    }
    assert list(tmp_path.iterdir()) == []  # nothing was written or attached


def test_own_files_are_loaded_before_the_lock(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    """User files are copied in at start-up; the served data never reads a file again."""
    path = _orders_file(tmp_path / "data", rows=3)
    emu = make_emulator(
        config={
            "data": {"tpch_scale": None, "tables": {"shop.sales.orders": str(path)}},
            "spaces": [{"id": "shop", "title": "Shop", "tables": [{"name": "shop.sales.orders"}]}],
        }
    )
    path.unlink()  # a view over the file would break now; a loaded copy does not
    w = emu.workspace_client()
    rows = w.statement_execution.execute_statement(
        "SELECT count(*) AS n FROM shop.sales.orders", warehouse_id="w"
    )
    assert rows.result is not None
    assert rows.result.data_array == [["3"]]


# --------------------------------------------------------------------------- statements ACL
def test_statements_only_over_the_principals_spaces(make_emulator: MakeEmulator) -> None:
    spaces = EmulatorConfig().spaces
    sales = next(s for s in spaces if s.title == "Sales & revenue")
    restricted = [
        s.model_copy(update={"permissions": {"carol@example.com": "CAN_RUN"} if s is sales else {}})
        for s in spaces
    ]
    emu = make_emulator(
        config={
            "spaces": [s.model_dump() for s in restricted],
            "principals": {
                "carol@example.com": {"token": "carol-token"},
                "dave@example.com": {"token": "dave-token"},
            },
        }
    )
    sales_table = sales.tables[0].name
    other = next(
        t.name
        for s in spaces
        for t in s.tables
        if t.name.lower() not in {x.name.lower() for x in sales.tables}
    )
    with _http(emu, "dave-token") as dave:  # no space at all
        for sql in (f"SELECT count(*) FROM {sales_table}", "SELECT 1"):
            r = dave.post(STATEMENTS, json={"statement": sql, "warehouse_id": "w"})
            assert r.status_code == 403, r.text
            assert r.json()["error_code"] == "PERMISSION_DENIED"
            assert "can run none" in r.json()["message"]
    carol = WorkspaceClient(host=emu.url, token="carol-token", auth_type="pat")
    ok = carol.statement_execution.execute_statement(
        f"SELECT count(*) AS n FROM {sales_table}", warehouse_id="w"
    )
    assert ok.status is not None
    assert ok.status.state == StatementState.SUCCEEDED
    with _http(emu, "carol-token") as client:
        for sql in (
            f"SELECT count(*) FROM {other}",
            f"WITH x AS (SELECT * FROM {other}) SELECT count(*) FROM x",
            f"SELECT * FROM {sales_table} WHERE 1 IN (SELECT 1 FROM {other})",
        ):
            r = client.post(STATEMENTS, json={"statement": sql, "warehouse_id": "w"})
            assert r.status_code == 403, (sql, r.text)
            assert other.lower() in r.json()["message"]
    assert all(
        s.principal == "carol@example.com" for s in statement_store(emu.service).statements.values()
    )


# --------------------------------------------------------------------------- reserved catalogs
def test_reserved_duckdb_names_work_as_catalogs(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    path = _orders_file(tmp_path / "data", rows=4)
    catalogs = ["main", "system", "temp", "memory"]
    emu = make_emulator(
        qpm=100,
        config={
            "data": {
                "tpch_scale": None,
                "tables": {f"{c}.shop.orders": str(path) for c in catalogs},
            },
            "spaces": [
                {
                    "id": f"space-{c}",
                    "title": f"Orders in {c}",
                    "tables": [{"name": f"{c}.shop.orders", "columns": {"amount": "Order amount"}}],
                    "measures": [{"name": "total amount", "sql": "SUM(amount)"}],
                    "example_sqls": [
                        {
                            "question": "How many orders are there?",
                            "sql": f"SELECT COUNT(*) AS n FROM {c}.shop.orders",
                        }
                    ],
                }
                for c in catalogs
            ],
        },
    )
    w = emu.workspace_client()
    for c in catalogs:
        msg = w.genie.start_conversation_and_wait(
            f"space-{c}", "How many orders are there?", timeout=WAIT
        )
        assert msg.status == MessageStatus.COMPLETED
        query = next(a for a in msg.attachments or [] if a.query is not None)
        assert query.query is not None
        assert f"{c}.shop.orders" in (query.query.query or "")
        result = w.genie.get_message_attachment_query_result(
            f"space-{c}", msg.conversation_id, msg.message_id, query.attachment_id
        )
        assert result.statement_response is not None
        assert result.statement_response.result.data_array == [["4"]]  # type: ignore[union-attr]
        planned = w.genie.start_conversation_and_wait(
            f"space-{c}", "What is the total amount?", timeout=WAIT
        )
        assert planned.status == MessageStatus.COMPLETED, planned
        stmt = w.statement_execution.execute_statement(
            "SELECT sum(amount) AS total FROM shop.orders", warehouse_id="w", catalog=c
        )
        assert stmt.status is not None
        assert stmt.status.state == StatementState.SUCCEEDED, stmt.status
        assert stmt.result is not None
        assert stmt.result.data_array == [["15.0"]]


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Your own spaces and data", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README's own-data example is missing"
    return match.group(1)


def test_readme_own_data_example_starts_and_answers(tmp_path: Path) -> None:
    """The README's example, copied as it is, with the data files it names."""
    config_text = _readme_example()
    config = yaml.safe_load(config_text)
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "my-emulator.yaml").write_text(config_text, encoding="utf-8")
    _orders_file(folder / "data", rows=100)
    for relative in config["data"]["attach"].values():
        con = duckdb.connect(str(folder / relative))
        con.execute("CREATE TABLE budget AS SELECT 2024 AS year, 1000.0 AS amount")
        con.close()
    with GenieEmulator(config=folder / "my-emulator.yaml", speed=0) as emu:
        space = config["spaces"][0]
        example = space["example_sqls"][0]
        for w in (
            WorkspaceClient(host=emu.url, token="alice-token", auth_type="pat"),
            WorkspaceClient(
                host=emu.url, client_id="etl-bot", client_secret="s3cret", auth_type="oauth-m2m"
            ),
        ):
            msg = w.genie.start_conversation_and_wait(
                space["id"], example["question"], timeout=WAIT
            )
            assert msg.status == MessageStatus.COMPLETED
            query = next(a for a in msg.attachments or [] if a.query is not None)
            assert query.query is not None
            assert query.query.query == example["sql"]
            result = w.genie.get_message_attachment_query_result(
                space["id"], msg.conversation_id, msg.message_id, query.attachment_id
            )
            assert result.statement_response is not None
            assert result.statement_response.result.data_array == [["7575.0"]]  # type: ignore[union-attr]
        assert emu.service.faults.pending() == []  # its two 503s were met and retried
        with _http(emu, "ops-token") as ops:
            assert ops.get("/emulator/admin/stats").status_code == 200
        with _http(emu, "alice-token") as alice:
            assert alice.get("/emulator/admin/stats").status_code == 403


# --------------------------------------------------------------------------- configuration errors
def test_config_errors_name_the_file_the_key_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text("limits:\n  qps: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        GenieEmulator(config=path)
    text = str(info.value)
    assert text.startswith(f"{path}: limits.qps:")
    assert "fix:" in text
    assert "qpm" in text
    assert "pydantic" not in text
    assert "Traceback" not in text
    assert "\n" not in text

    path.write_text(
        "data:\n  tpch_scale: null\n  tables:\n    main.shop.orders: missing/orders.parquet\n"
        "spaces: []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        GenieEmulator(config=path).start()
    text = str(info.value)
    assert text.startswith(f"{path}: data.tables.main.shop.orders:")
    assert "missing/orders.parquet does not exist" in text
    assert "fix:" in text
    assert "duckdb" not in text.lower() or "DuckDB file" in text

    path.write_text(": not yaml: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        EmulatorConfig.from_file(path)


def test_declarations_are_checked_against_the_data(tmp_path: Path) -> None:
    data = _orders_file(tmp_path / "data", rows=3)
    config = {
        "data": {"tpch_scale": None, "tables": {"main.shop.orders": str(data)}},
        "spaces": [
            {
                "id": "shop",
                "title": "Shop",
                "tables": [
                    {
                        "name": "main.shop.orders",
                        "columns": {"order_id": "Key", "amuont": "Amount"},
                    },
                ],
                "joins": [
                    {"left": "main.shop.orders.order_id", "right": "main.shop.orders.cust_id"}
                ],
                "dimensions": [{"name": "day", "column": "main.shop.orders.order_date"}],
                "measures": [{"name": "revenue", "sql": "SUM(price * qty)"}],
                "example_sqls": [
                    {
                        "question": "Customers?",
                        "sql": "SELECT COUNT(*) FROM main.shop.orders o "
                        "JOIN main.shop.customers c ON true",
                    },
                    {"question": "Total?", "sql": "SELECT SUM(amount) FROM main.shop.orders"},
                ],
            },
            {"id": "ghost", "title": "Ghost", "tables": [{"name": "main.shop.ghosts"}]},
        ],
    }
    path = tmp_path / "emu.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        GenieEmulator(config=path, speed=0).start()
    text = str(info.value)
    assert text.startswith(f"{path}: 6 problems")
    for key in (
        "spaces[0].tables[0].columns.amuont",
        "spaces[0].joins[0].right",
        "spaces[0].dimensions[0].column",
        "spaces[0].measures[0].sql",
        "spaces[0].example_sqls[0].sql",
        "spaces[1].tables[0].name",
    ):
        assert f"  - {key}: " in text, (key, text)
    assert "spaces[0].example_sqls[1]" not in text  # the good example is not blamed
    assert "price, qty" in text
    assert "amount, order_id" not in text.split("measures")[0]


def test_cli_reports_a_config_error_in_one_message(tmp_path: Path) -> None:
    path = tmp_path / "emu.yaml"
    path.write_text(
        "data:\n  tpch_scale: null\n  tables:\n    main.shop.orders: nope.parquet\nspaces: []\n",
        encoding="utf-8",
    )
    genie_tools = str(Path(sys.executable).parent / "genie-tools")
    done = subprocess.run(
        [genie_tools, "emulator", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "500"},  # the usage box does not wrap the message
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", done.stderr).split())
    assert f"{path}: data.tables.main.shop.orders: the file" in said
    assert "nope.parquet does not exist (fix: point it at a Parquet or CSV file" in said
    assert done.stdout == ""


# --------------------------------------------------------------------------- CLI banner
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "127.0.0.1", "localhost"])
def test_banner_prints_a_host_the_client_accepts(host: str) -> None:
    emu = GenieEmulator(host=host, port=8765, token="dapi-test")
    lines = emu.banner()
    export = next(line for line in lines if "export DATABRICKS_HOST=" in line)
    url = export.split("DATABRICKS_HOST=", 1)[1].split()[0]
    assert check_host(url) == url
    assert emu.url == url
    remote_note = any("HTTPS reverse proxy" in line for line in lines)
    assert remote_note == (host in ("0.0.0.0", "::"))


def test_banner_for_a_non_loopback_interface_gives_no_refused_host() -> None:
    lines = GenieEmulator(host="192.0.2.10", port=8765, token="t").banner()
    assert not any("export DATABRICKS_HOST=http://" in line for line in lines)
    assert any("https://" in line and "proxy" in line for line in lines)


# --------------------------------------------------------------------------- state across processes
_PROCESS = textwrap.dedent(
    """
    import json, sys
    from databricks.sdk.service.dashboards import MessageStatus
    from genie_tools.emulator import GenieEmulator

    state_dir, question, conversation = sys.argv[1], sys.argv[2], sys.argv[3] or None
    with GenieEmulator(speed=0, qpm=100, state_dir=state_dir) as emu:
        w = emu.workspace_client()
        space = next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")
        if conversation is None:
            msg = w.genie.start_conversation_and_wait(space, question)
        else:
            before = w.genie.list_conversation_messages(space, conversation).messages or []
            msg = w.genie.create_message_and_wait(space, conversation, question)
        query = next(a for a in msg.attachments or [] if a.query is not None)
        result = w.genie.get_message_attachment_query_result(
            space, msg.conversation_id, msg.message_id, query.attachment_id
        )
        print(json.dumps({
            "token": emu.token,
            "conversation_id": msg.conversation_id,
            "message_id": msg.message_id,
            "sql": query.query.query,
            "rows": result.statement_response.result.data_array,
            "earlier": [] if conversation is None else [m.content for m in before],
        }))
    """
)


def _run_process(state_dir: Path, question: str, conversation: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS, str(state_dir), question, conversation],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_state_dir_continues_a_conversation_in_a_new_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = _run_process(state, "revenue by region in 1996")
    assert "1996" in first["sql"]
    assert "EUROPE" not in first["sql"]
    second = _run_process(state, "only EUROPE", first["conversation_id"])
    assert second["conversation_id"] == first["conversation_id"]
    assert second["message_id"] != first["message_id"]
    assert "1996" in second["sql"]
    assert "'EUROPE'" in second["sql"]
    assert second["earlier"] == ["revenue by region in 1996"]
    assert len(second["rows"]) == 1
    assert second["rows"][0][0] == "EUROPE"
    assert second["token"] == first["token"]  # clients configured for the folder keep working
    assert (
        state / "emulator-state.sqlite3"
    ).stat().st_mode & 0o077 == 0  # private: holds the token
    # A third process still serves the first answer's stored result.
    with GenieEmulator(speed=0, state_dir=state) as emu:
        w = emu.workspace_client()
        space = _sales(emu)
        msgs = w.genie.list_conversation_messages(space, first["conversation_id"]).messages or []
        assert [m.content for m in msgs] == ["revenue by region in 1996", "only EUROPE"]
        query = next(a for a in msgs[0].attachments or [] if a.query is not None)
        stored = w.genie.get_message_attachment_query_result(
            space, first["conversation_id"], first["message_id"], query.attachment_id
        )
        assert stored.statement_response.result.data_array == first["rows"]  # type: ignore[union-attr]
        assert "1996" in (query.query.query if query.query else "")


def test_state_dir_in_the_config_resolves_against_its_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "emu.yaml"
    path.parent.mkdir()
    path.write_text("state_dir: threads\n", encoding="utf-8")
    emu = GenieEmulator(config=path, speed=0)
    assert emu.state_dir == path.parent / "threads"
    again = GenieEmulator(config=path, speed=0)
    assert again.token == emu.token  # kept in the folder, so clients keep working
    assert again.client_secret == emu.client_secret
    assert GenieEmulator(config=path, token="mine").token == "mine"  # an explicit token wins
    assert emu.token not in repr(emu)
