"""Emulator configuration: a user's own spaces and files, validation, limits, read-only SQL."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from conftest import assert_same_rows
from databricks.sdk.errors import BadRequest
from pydantic import ValidationError

from genie_tools.emulator import EmulatorConfig, GenieEmulator
from genie_tools.emulator.config import ConfigError

ORDERS = [
    (1, 10, decimal.Decimal("120.50"), dt.date(2024, 1, 5)),
    (2, 11, decimal.Decimal("75.00"), dt.date(2024, 1, 9)),
    (3, 10, decimal.Decimal("19.99"), dt.date(2024, 2, 1)),
    (4, 12, decimal.Decimal("300.00"), dt.date(2024, 2, 14)),
    (5, 13, decimal.Decimal("42.42"), dt.date(2024, 3, 3)),
    (6, 11, decimal.Decimal("10.01"), dt.date(2024, 3, 30)),
]
CUSTOMERS = [(10, "Ada", "UK"), (11, "Grace", "US"), (12, "Linus", "FI"), (13, "Alan", "UK")]
STOCK = [("A-1", 5), ("B-2", 0), ("C-3", 17)]
SECRET = [("launch code", 1234)]

Q_BY_COUNTRY = "What is the total order amount by country?"
Q_STOCK = "How many units of each sku are in stock?"
Q_FEBRUARY = "Which orders were placed in February 2024?"
Q_DELETE = "Delete all orders"
Q_DROP = "Drop the orders table"
Q_OTHER_TABLE = "What is in the secret table?"
Q_READ_FILE = "Read the orders file directly"
Q_BROKEN = "Show orders with an unterminated quote"

SPACE = {
    "id": "my-shop",
    "title": "My shop",
    "description": "Orders, customers and stock of a small shop.",
    "tables": [
        {
            "name": "shop.sales.orders",
            "description": "One row per order.",
            "columns": {
                "order_id": "Order key.",
                "customer_id": "Customer key.",
                "amount": "Order amount in dollars.",
                "order_date": "Order date.",
            },
        },
        {"name": "shop.sales.customers", "columns": {"id": "Key.", "country": "ISO code."}},
        {"name": "warehouse.main.stock", "columns": {"sku": "Stock keeping unit."}},
    ],
    "sample_questions": [Q_BY_COUNTRY, Q_STOCK],
    "example_sqls": [
        {
            "question": Q_BY_COUNTRY,
            "sql": "SELECT c.country, SUM(o.amount) AS total_amount, COUNT(*) AS orders\n"
            "FROM shop.sales.orders o JOIN shop.sales.customers c ON c.id = o.customer_id\n"
            "GROUP BY c.country ORDER BY c.country",
        },
        {"question": Q_STOCK, "sql": "SELECT sku, qty FROM warehouse.main.stock ORDER BY sku"},
        {
            "question": Q_FEBRUARY,
            "sql": "SELECT order_id, amount, order_date FROM shop.sales.orders "
            "WHERE order_date >= DATE '2024-02-01' AND order_date < DATE '2024-03-01' "
            "ORDER BY order_id",
        },
    ],
}


def _expected_by_country() -> list[tuple[Any, ...]]:
    country = {cid: c for cid, _, c in CUSTOMERS}
    totals: dict[str, list[Any]] = {}
    for _, cid, amount, _ in ORDERS:
        entry = totals.setdefault(country[cid], [decimal.Decimal(0), 0])
        entry[0] += amount
        entry[1] += 1
    return [(c, t, n) for c, (t, n) in sorted(totals.items())]


def _write_data(folder: Path) -> None:
    """Parquet, CSV and a DuckDB file, written by DuckDB itself."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, "
            "amount DECIMAL(10,2), order_date DATE)"
        )
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
        con.execute(f"COPY orders TO '{folder / 'orders.parquet'}' (FORMAT parquet)")
        con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR, country VARCHAR)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)
        con.execute(f"COPY customers TO '{folder / 'customers.csv'}' (FORMAT csv, HEADER)")
        con.execute("CREATE TABLE secret (what VARCHAR, code INTEGER)")
        con.executemany("INSERT INTO secret VALUES (?, ?)", SECRET)
        con.execute(f"COPY secret TO '{folder / 'secret.parquet'}' (FORMAT parquet)")
    finally:
        con.close()
    inventory = duckdb.connect(str(folder / "inventory.duckdb"))
    try:
        inventory.execute("CREATE TABLE stock (sku VARCHAR, qty INTEGER)")
        inventory.executemany("INSERT INTO stock VALUES (?, ?)", STOCK)
    finally:
        inventory.close()


def _data_section() -> dict[str, Any]:
    return {
        "tpch_scale": None,
        "tables": {
            "shop.sales.orders": "data/orders.parquet",
            "shop.sales.customers": "data/customers.csv",
            "shop.sales.secret": "data/secret.parquet",
        },
        "attach": {"warehouse": "data/inventory.duckdb"},
    }


@pytest.fixture
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder with data files and a YAML using relative paths; cwd is elsewhere."""
    folder = tmp_path / "project"
    _write_data(folder / "data")
    path = folder / "genie.yaml"
    path.write_text(
        yaml.safe_dump({"data": _data_section(), "spaces": [SPACE]}, sort_keys=False),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return path


def _answer(w: Any, space_id: str, question: str) -> tuple[Any, Any]:
    """Ask, poll until done; return (message, statement response or None)."""
    started = w.genie.start_conversation(space_id, question).response
    deadline = time.time() + 15
    while True:
        msg = w.genie.get_message(space_id, started.conversation_id, started.message_id)
        if msg.status.value in ("COMPLETED", "FAILED", "CANCELLED") or time.time() > deadline:
            break
        time.sleep(0.02)
    assert msg.status.value == "COMPLETED"
    queries = [a for a in msg.attachments or [] if a.query is not None]
    if not queries:
        return msg, None
    stmt = w.genie.get_message_attachment_query_result(
        space_id, msg.conversation_id, msg.message_id, queries[0].attachment_id
    ).statement_response
    return msg, stmt


def _client(emu: GenieEmulator) -> Any:
    """A WorkspaceClient that gives up on retries after 5 s (built without workspace_client,
    whose **config pass-through is tested separately)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    cfg = Config(host=emu.url, token=emu.token, auth_type="pat", retry_timeout_seconds=5)
    return WorkspaceClient(config=cfg)


def _settle(emu: GenieEmulator, limit: float = 10.0) -> None:
    """Wait until every asked question has finished running its query."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if all(m.completed_at is not None for m in emu.messages()):
            return
        time.sleep(0.02)
    raise AssertionError("queries did not finish")


def _assert_clarification(msg: Any) -> None:
    assert all(a.query is None for a in msg.attachments or [])
    texts = [a.text for a in msg.attachments or [] if a.text is not None]
    assert len(texts) == 1
    assert texts[0].purpose is not None
    assert texts[0].purpose.value == "FOLLOW_UP_QUESTION"


# --------------------------------------------------------------------------- own data


def test_own_space_over_parquet_csv_and_duckdb(
    own_config: Path, make_emulator: Callable[..., GenieEmulator]
) -> None:
    emu = make_emulator(config=own_config, qpm=1000)
    w = emu.workspace_client()
    spaces = w.genie.list_spaces().spaces
    assert [(s.space_id, s.title) for s in spaces] == [("my-shop", "My shop")]

    _, stmt = _answer(w, "my-shop", Q_BY_COUNTRY)
    assert stmt.status.state.value == "SUCCEEDED"
    columns = [(c.name, c.type_name.value) for c in stmt.manifest.schema.columns]
    assert columns[0] == ("country", "STRING")
    assert columns[1][0] == "total_amount"
    assert columns[1][1] == "DECIMAL"
    assert_same_rows(stmt, _expected_by_country())

    _, stmt = _answer(w, "my-shop", Q_STOCK)
    assert [(c.name, c.type_name.value) for c in stmt.manifest.schema.columns] == [
        ("sku", "STRING"),
        ("qty", "INT"),
    ]
    assert_same_rows(stmt, sorted(STOCK))

    # Case and punctuation do not matter; dates come back as dates.
    _, stmt = _answer(w, "my-shop", "which orders were placed in FEBRUARY 2024")
    assert [c.type_name.value for c in stmt.manifest.schema.columns] == ["INT", "DECIMAL", "DATE"]
    assert_same_rows(stmt, [(o, a, d) for o, _, a, d in ORDERS if d.month == 2])


def test_config_accepts_path_str_dict_and_model(
    own_config: Path, make_emulator: Callable[..., GenieEmulator]
) -> None:
    from_str = make_emulator(config=str(own_config), qpm=1000)
    assert [s.id for s in from_str.config.spaces] == ["my-shop"]
    # Relative data paths were resolved against the YAML's folder, not the cwd.
    data_dir = own_config.parent / "data"
    assert from_str.config.data.tables["shop.sales.orders"] == str(data_dir / "orders.parquet")
    assert from_str.config.data.attach["warehouse"] == str(data_dir / "inventory.duckdb")

    cfg = EmulatorConfig.from_file(own_config)
    from_model = make_emulator(config=cfg, qpm=1000)
    from_dict = make_emulator(config=cfg.model_dump(), qpm=1000)
    for emu in (from_model, from_dict):
        _, stmt = _answer(emu.workspace_client(), "my-shop", Q_STOCK)
        assert_same_rows(stmt, sorted(STOCK))


def test_serialized_space_of_own_space(
    own_config: Path, make_emulator: Callable[..., GenieEmulator]
) -> None:
    emu = make_emulator(config=own_config, qpm=1000)
    space = emu.workspace_client().genie.get_space("my-shop", include_serialized_space=True)
    assert space.title == "My shop"
    doc = json.loads(space.serialized_space)
    assert [t["identifier"] for t in doc["data_sources"]["tables"]] == [
        "shop.sales.orders",
        "shop.sales.customers",
        "warehouse.main.stock",
    ]
    examples = doc["instructions"]["example_question_sqls"]
    assert [e["question"] for e in examples] == [[Q_BY_COUNTRY], [Q_STOCK], [Q_FEBRUARY]]


def test_spaces_file_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_emulator: Callable[..., GenieEmulator]
) -> None:
    folder = tmp_path / "cfg"
    _write_data(folder / "data")
    (folder / "spaces").mkdir()
    (folder / "spaces" / "shop.yaml").write_text(
        yaml.safe_dump({"spaces": [SPACE]}), encoding="utf-8"
    )
    path = folder / "genie.yaml"
    path.write_text(
        yaml.safe_dump(
            {"data": _data_section(), "spaces_file": "spaces/shop.yaml", "limits": {"qpm": 9}}
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    emu = make_emulator(config=path)
    assert emu.config.limits.qpm == 9
    assert [s.id for s in emu.config.spaces] == ["my-shop"]
    _, stmt = _answer(emu.workspace_client(), "my-shop", Q_BY_COUNTRY)
    assert_same_rows(stmt, _expected_by_country())


def test_workspace_client_passes_sdk_config_options(
    make_emulator: Callable[..., GenieEmulator],
) -> None:
    # GenieEmulator.workspace_client(**config) is documented to take SDK Config options.
    emu = make_emulator(qpm=1000)
    w = emu.workspace_client(retry_timeout_seconds=5, http_timeout_seconds=7)
    assert w.config.retry_timeout_seconds == 5
    assert w.config.http_timeout_seconds == 7
    assert len(w.genie.list_spaces().spaces) == 3


# --------------------------------------------------------------------------- validation


def _space(space_id: str, table: str = "shop.sales.orders") -> dict[str, Any]:
    return {"id": space_id, "title": space_id, "tables": [{"name": table}]}


def test_duplicate_space_ids_rejected() -> None:
    with pytest.raises(ValidationError, match=r"repeated: \['dup'\]"):
        EmulatorConfig.model_validate({"spaces": [_space("dup"), _space("ok"), _space("dup")]})


def test_table_must_be_fully_qualified() -> None:
    with pytest.raises(ValidationError, match=r"must be fully qualified as catalog\.schema\.table"):
        EmulatorConfig.model_validate({"spaces": [_space("s", table="sales.orders")]})


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"colour": "blue"}, "colour"),
        ({"limits": {"qps": 3}}, "limits.qps"),
        ({"data": {"tpch_scale": None, "files": {}}}, "data.files"),
        ({"spaces": [{**_space("s"), "owner": "me"}]}, "spaces.0.owner"),
        ({"latency": {"total": 1}}, "latency.total"),
    ],
)
def test_unknown_keys_rejected(raw: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as info:
        EmulatorConfig.model_validate(raw)
    errors = info.value.errors()
    assert [".".join(str(p) for p in e["loc"]) for e in errors] == [where]
    assert errors[0]["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"qpm": 0}, "qpm"),
        ({"max_result_rows": 0}, "max_result_rows"),
        ({"rate_window_seconds": 0}, "rate_window_seconds"),
    ],
)
def test_limits_must_be_positive(limits: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EmulatorConfig.model_validate({"limits": limits})
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [("limits", field)]
    assert errors[0]["type"] in ("greater_than_equal", "greater_than")


def test_bad_yaml_config_raises_before_starting(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("limits:\n  qpm: 0\n", encoding="utf-8")
    # One message naming the file, the key and the fix (not pydantic's report).
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: limits\.qpm: .*fix: give a number at least 1"
    ):
        GenieEmulator(config=path)
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="top level must be a mapping"):
        EmulatorConfig.from_file(path)
    with pytest.raises(ConfigError, match="repeated"):
        GenieEmulator(config={"spaces": [_space("x"), _space("x")]})


# --------------------------------------------------------------------------- limits


def test_max_message_length(make_emulator: Callable[..., GenieEmulator], sales_space: str) -> None:
    emu = make_emulator(qpm=1000, config={"limits": {"max_message_length": 40}})
    w = emu.workspace_client()
    with pytest.raises(BadRequest, match=r"content is 41 characters; the limit is 40"):
        w.genie.start_conversation(sales_space, "x" * 41)
    ok = w.genie.start_conversation(sales_space, "y" * 40).response
    with pytest.raises(BadRequest, match="the limit is 40"):
        w.genie.create_message(sales_space, ok.conversation_id, "z" * 100)
    stats = emu.stats()
    assert stats["questions"] == 1
    assert stats["conversations"] == 1
    _settle(emu)


def test_max_conversations_per_space(
    make_emulator: Callable[..., GenieEmulator], sales_space: str
) -> None:
    emu = make_emulator(qpm=1000, config={"limits": {"max_conversations_per_space": 2}})
    w = emu.workspace_client()
    first = w.genie.start_conversation(sales_space, "What was total revenue by year?").response
    w.genie.start_conversation(sales_space, "How many orders were placed in 1996?")
    with pytest.raises(BadRequest, match="reached 2 conversations"):
        w.genie.start_conversation(sales_space, "What is revenue by region and year?")
    # The limit is per space ...
    other = next(s.id for s in emu.config.spaces if s.id != sales_space)
    w.genie.start_conversation(other, "How many suppliers are there in each nation?")
    # ... and deleting a conversation frees a slot.
    w.genie.delete_conversation(sales_space, first.conversation_id)
    w.genie.start_conversation(sales_space, "What is revenue by region and year?")
    assert emu.stats()["questions_by_space"][sales_space] == 3
    _settle(emu)


def test_max_messages_per_conversation(
    make_emulator: Callable[..., GenieEmulator], sales_space: str
) -> None:
    emu = make_emulator(qpm=1000, config={"limits": {"max_messages_per_conversation": 2}})
    w = emu.workspace_client()
    conv = w.genie.start_conversation(sales_space, "What was total revenue by year?").response
    w.genie.create_message(sales_space, conv.conversation_id, "What is revenue by region and year?")
    with pytest.raises(BadRequest, match="reached 2 messages"):
        w.genie.create_message(sales_space, conv.conversation_id, "How many orders in 1996?")
    # A new conversation is the way out.
    w.genie.start_conversation(sales_space, "How many orders in 1996?")
    assert emu.stats()["questions_by_conversation"][conv.conversation_id] == 2
    _settle(emu)


def test_max_result_rows_truncates(
    make_emulator: Callable[..., GenieEmulator],
    duckdb_reference: Callable[[str], list[tuple[Any, ...]]],
) -> None:
    emu = make_emulator(qpm=1000, config={"limits": {"max_result_rows": 10}})
    w = emu.workspace_client()
    supply = next(s.id for s in emu.config.spaces if s.title == "Supply chain")
    msg, stmt = _answer(w, supply, "How many suppliers are there in each nation?")
    query = next(a.query for a in msg.attachments if a.query is not None)
    full = duckdb_reference(query.query)
    assert len(full) == 25
    assert query.query_result_metadata.is_truncated is True
    assert query.query_result_metadata.row_count == 10
    assert stmt.manifest.truncated is True
    assert stmt.manifest.total_row_count == 10
    assert len(stmt.result.data_array) == 10
    assert_same_rows(stmt, full[:10])


# --------------------------------------------------------------------------- read-only


def _unsafe_config(folder: Path) -> Path:
    _write_data(folder / "data")
    unsafe = {
        **SPACE,
        "id": "unsafe",
        "title": "Unsafe",
        "example_sqls": [
            *SPACE["example_sqls"],
            {"question": Q_DELETE, "sql": "DELETE FROM shop.sales.orders"},
            {"question": Q_DROP, "sql": "DROP TABLE shop.sales.orders"},
            {"question": Q_OTHER_TABLE, "sql": "SELECT * FROM shop.sales.secret"},
            {
                "question": Q_READ_FILE,
                "sql": f"SELECT * FROM read_parquet('{folder / 'data' / 'secret.parquet'}')",
            },
        ],
    }
    secret = {
        "id": "secret",
        "title": "Secret",
        "tables": [{"name": "shop.sales.secret"}],
        "example_sqls": [
            {"question": "What is the code?", "sql": "SELECT code FROM shop.sales.secret"}
        ],
    }
    path = folder / "unsafe.yaml"
    path.write_text(
        yaml.safe_dump({"data": _data_section(), "spaces": [unsafe, secret]}), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize("question", [Q_DELETE, Q_DROP, Q_OTHER_TABLE, Q_READ_FILE])
def test_unsafe_example_sql_is_never_run(
    tmp_path: Path, make_emulator: Callable[..., GenieEmulator], question: str
) -> None:
    emu = make_emulator(config=_unsafe_config(tmp_path), qpm=1000)
    w = _client(emu)
    msg, stmt = _answer(w, "unsafe", question)
    assert stmt is None
    _assert_clarification(msg)
    info = next(m for m in emu.messages() if m.message_id == msg.message_id)
    assert info.sql is None
    # Nothing was changed: the data still answers as written.
    _, after = _answer(w, "unsafe", Q_BY_COUNTRY)
    assert_same_rows(after, _expected_by_country())
    # The table outside the space exists and works from its own space.
    _, code = _answer(w, "secret", "What is the code?")
    assert_same_rows(code, [(1234,)])


def test_example_sql_that_does_not_tokenize_gets_a_clarification(
    tmp_path: Path, make_emulator: Callable[..., GenieEmulator]
) -> None:
    _write_data(tmp_path / "data")
    space = {
        **SPACE,
        "example_sqls": [
            *SPACE["example_sqls"],
            {"question": Q_BROKEN, "sql": "SELECT 'unterminated FROM shop.sales.orders"},
        ],
    }
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"data": _data_section(), "spaces": [space]}), encoding="utf-8")
    emu = make_emulator(config=path, qpm=1000)
    w = _client(emu)
    msg, stmt = _answer(w, "my-shop", Q_BROKEN)
    assert stmt is None
    _assert_clarification(msg)
