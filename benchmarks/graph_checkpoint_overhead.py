"""Checkpoint write overhead per Genie turn: InMemorySaver vs SQLite vs Postgres (issue 6).

Run: ``python3 dev.py run python benchmarks/graph_checkpoint_overhead.py`` (about a minute;
``--turns N`` per variant, default 50; ``--quick`` is a smoke test that writes nothing).
Writes ``benchmarks/results/graph_checkpoint_overhead.json`` and ``.md``.

One graph, ``START → create_genie_node(...)``, over the emulator at speed 0 (Genie
answers at once; the client polls after 10 ms), in this process, side by side:

* ``client.ask``: the same questions through ``GenieClient.ask`` (no graph): the floor;
* the graph with ``InMemorySaver``, ``SqliteSaver`` (a file) and ``PostgresSaver``, each
  opened by ``checkpointer_from_url`` and invoked with LangGraph's default durability
  (``"async"``; the node's own steps are always ``"sync"``);
* SQLite and Postgres again with ``graph.invoke(..., durability="sync")``, the cost of
  making the parent's checkpoints land before the node runs.

Turns come in threads of 5 (a first question, 4 follow-ups in the same Genie
conversation); variants take turns thread by thread, in a rotating order, after one
warm-up thread each. Per turn: wall time of ``invoke`` (median, p90, and the median
minus InMemorySaver's), calls into the checkpointer (``put``, ``put_writes``,
``get_tuple``) and the time spent inside them (background writes included), and what
the thread's rows grew by (checkpoints and writes; bytes as stored: SQLite's BLOBs,
Postgres' JSONB text + BYTEA blobs, InMemorySaver's serialized bytes).

Postgres: ``GENIE_TEST_POSTGRES_URL`` (a URL that may create databases), else a
throwaway local cluster (tests/postgres_fixture.py; ``fsync=off``, loopback), else it
is left out. A managed Postgres (Lakebase) adds a network round trip per statement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NAME = "graph_checkpoint_overhead"
TURNS_PER_THREAD = 5
sys.path.insert(0, str(ROOT / "benchmarks"))

from graph_crash_stress import postgres_database  # noqa: E402


def question(thread: int, turn: int) -> str:
    if turn == 0:
        return f"What are the top {thread % 40 + 2} customers by revenue?"
    return f"only {1992 + (thread + turn) % 7}, top {turn + 2}"


@dataclass
class Counted:
    """Calls into a checkpointer and the seconds spent inside them."""

    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def wrap(self, saver: Any) -> None:
        for name in ("put", "put_writes", "get_tuple"):
            original = getattr(saver, name)

            def counted(*args: Any, _f: Any = original, _n: str = name, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return _f(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - started
                    self.calls[_n] = self.calls.get(_n, 0) + 1

            setattr(saver, name, counted)

    def snapshot(self) -> tuple[dict[str, int], float]:
        return dict(self.calls), self.seconds


@dataclass
class Variant:
    label: str
    kind: str  # client | memory | sqlite | postgres
    url: str | None = None
    durability: str | None = None
    prefix: str = ""
    run: Callable[[int, int], None] | None = None
    # rows, write rows, bytes, bytes under the node's namespace
    stored: Callable[[str], tuple[int, int, int, int]] | None = None
    counted: Counted = field(default_factory=Counted)
    seconds: list[float] = field(default_factory=list)
    calls: list[dict[str, int]] = field(default_factory=list)
    inside: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    node_bytes: list[int] = field(default_factory=list)
    bytes_by_position: dict[int, list[int]] = field(default_factory=dict)


def _size(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, dict):
        return sum(_size(v) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(_size(v) for v in value)
    return 0


def memory_stored(saver: Any) -> Callable[[str], tuple[int, int, int, int]]:
    def stored(thread: str) -> tuple[int, int, int, int]:
        namespaces = saver.storage.get(thread, {})
        checkpoints = sum(len(ns) for ns in namespaces.values())
        writes = {k: v for k, v in saver.writes.items() if k[0] == thread}
        blobs = {k: v for k, v in saver.blobs.items() if k[0] == thread}
        size = _size(list(namespaces.values())) + _size(writes) + _size(blobs)
        node = (
            _size([v for ns, v in namespaces.items() if ns])
            + _size([v for k, v in writes.items() if k[1]])
            + _size([v for k, v in blobs.items() if k[1]])
        )
        return checkpoints, sum(len(w) for w in writes.values()), size, node

    return stored


def sqlite_stored(saver: Any) -> Callable[[str], tuple[int, int, int, int]]:
    def stored(thread: str) -> tuple[int, int, int, int]:
        with saver.lock:
            c = saver.conn.execute(
                "SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0), "
                "coalesce(sum(CASE WHEN checkpoint_ns != '' THEN length(checkpoint) "
                "+ length(metadata) END), 0) FROM checkpoints WHERE thread_id = ?",
                (thread,),
            ).fetchone()
            w = saver.conn.execute(
                "SELECT count(*), coalesce(sum(length(value)), 0), coalesce(sum(CASE WHEN "
                "checkpoint_ns != '' THEN length(value) END), 0) FROM writes "
                "WHERE thread_id = ?",
                (thread,),
            ).fetchone()
        return int(c[0]), int(w[0]), int(c[1]) + int(w[1]), int(c[2]) + int(w[2])

    return stored


def postgres_stored(url: str) -> Callable[[str], tuple[int, int, int, int]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    node = "CASE WHEN checkpoint_ns != '' THEN {} END"
    size = "octet_length(checkpoint::text) + octet_length(metadata::text)"
    blob = "octet_length(blob)"

    def stored(thread: str) -> tuple[int, int, int, int]:
        c = conn.execute(
            f"SELECT count(*), coalesce(sum({size}), 0), coalesce(sum({node.format(size)}), 0) "
            "FROM checkpoints WHERE thread_id = %s",
            (thread,),
        ).fetchone()
        b = conn.execute(
            f"SELECT coalesce(sum({blob}), 0), coalesce(sum({node.format(blob)}), 0) "
            "FROM checkpoint_blobs WHERE thread_id = %s",
            (thread,),
        ).fetchone()
        w = conn.execute(
            f"SELECT count(*), coalesce(sum({blob}), 0), coalesce(sum({node.format(blob)}), 0) "
            "FROM checkpoint_writes WHERE thread_id = %s",
            (thread,),
        ).fetchone()
        assert c is not None
        assert b is not None
        assert w is not None
        total = int(c[1]) + int(b[0]) + int(w[1])
        return int(c[0]), int(w[0]), total, int(c[2]) + int(b[1]) + int(w[2])

    return stored


@contextlib.contextmanager
def prepared(variants: list[Variant], emu: Any, settings: Any) -> Iterator[None]:
    """Open each variant's checkpointer and build its ``run(thread, turn)``."""
    from langchain_core.messages import HumanMessage
    from langgraph.graph import START, StateGraph

    from genie_tools import GenieClient
    from genie_tools.graph import GenieState, checkpointer_from_url, create_genie_node

    space = next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")
    workspace = emu.workspace_client()
    with contextlib.ExitStack() as stack:
        for v in variants:
            if v.kind == "client":
                client = GenieClient(workspace=workspace, settings=settings)
                conversations: dict[int, str] = {}

                def ask(thread: int, turn: int, _c: Any = client, _m: Any = conversations) -> None:
                    answer = _c.ask(
                        question(thread, turn), space_id=space, conversation_id=_m.get(thread)
                    )
                    _m[thread] = answer.conversation_id

                v.run = ask
                continue
            assert v.url is not None
            saver = stack.enter_context(checkpointer_from_url(v.url))
            v.counted.wrap(saver)
            builder = StateGraph(GenieState)
            builder.add_node(
                "sales",
                create_genie_node(space, name="sales", workspace=workspace, settings=settings),
            )
            builder.add_edge(START, "sales")
            graph = builder.compile(checkpointer=saver)
            options = {"durability": v.durability} if v.durability else {}
            prefix = f"{v.label}-{uuid.uuid4().hex[:6]}"

            def run(
                thread: int, turn: int, _g: Any = graph, _o: Any = options, _p: str = prefix
            ) -> None:
                config = {"configurable": {"thread_id": f"{_p}-{thread}"}}
                out = _g.invoke({"messages": [HumanMessage(question(thread, turn))]}, config, **_o)
                assert "answer" in out["messages"][-1].additional_kwargs["genie"], out
                assert out["genie"][space]["pending"] is None

            v.run = run
            v.stored = (
                memory_stored(saver)
                if v.kind == "memory"
                else sqlite_stored(saver)
                if v.kind == "sqlite"
                else postgres_stored(v.url)
            )
            v.prefix = prefix
        yield


def run_thread(v: Variant, thread: int, *, record: bool) -> None:
    assert v.run is not None
    name = f"{v.prefix}-{thread}"
    for turn in range(TURNS_PER_THREAD):
        calls0, inside0 = v.counted.snapshot()
        before = v.stored(name) if v.stored else (0, 0, 0, 0)
        started = time.perf_counter()
        v.run(thread, turn)
        elapsed = time.perf_counter() - started
        time.sleep(0.02)  # let background (durability="async") writes land before counting
        calls1, inside1 = v.counted.snapshot()
        after = v.stored(name) if v.stored else (0, 0, 0, 0)
        if not record:
            continue
        v.seconds.append(elapsed)
        v.calls.append({k: calls1.get(k, 0) - calls0.get(k, 0) for k in calls1})
        v.inside.append(inside1 - inside0)
        v.rows.append(after[0] - before[0])
        v.writes.append(after[1] - before[1])
        v.bytes.append(after[2] - before[2])
        v.node_bytes.append(after[3] - before[3])
        v.bytes_by_position.setdefault(turn + 1, []).append(after[2] - before[2])


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1000:.1f}"


def summary(v: Variant, floor: float | None) -> dict[str, Any]:
    med = statistics.median(v.seconds)
    p90 = statistics.quantiles(v.seconds, n=10)[-1] if len(v.seconds) >= 10 else max(v.seconds)
    calls = {
        k: statistics.mean(c.get(k, 0) for c in v.calls) for k in ("put", "put_writes", "get_tuple")
    }
    return {
        "variant": v.label,
        "turns": len(v.seconds),
        "median_ms": round(med * 1000, 2),
        "p90_ms": round(p90 * 1000, 2),
        "over_memory_ms": None if floor is None else round((med - floor) * 1000, 2),
        "checkpoints_per_turn": statistics.mean(v.rows) if v.stored else None,
        "write_rows_per_turn": statistics.mean(v.writes) if v.stored else None,
        "puts_per_turn": calls["put"] if v.stored else None,
        "put_writes_per_turn": calls["put_writes"] if v.stored else None,
        "get_tuple_per_turn": calls["get_tuple"] if v.stored else None,
        "ms_inside_checkpointer_per_turn": round(statistics.median(v.inside) * 1000, 2)
        if v.stored
        else None,
        "bytes_per_turn": round(statistics.mean(v.bytes)) if v.stored else None,
        "node_steps_bytes_share": round(sum(v.node_bytes) / sum(v.bytes), 3)
        if v.stored and sum(v.bytes)
        else None,
        "bytes_by_turn_of_thread": {
            str(k): round(statistics.mean(b)) for k, b in sorted(v.bytes_by_position.items())
        }
        if v.stored
        else None,
    }


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    def num(x: Any, unit: str = "") -> str:
        if x is None:
            return "–"
        if isinstance(x, float) and not x.is_integer():
            return f"{x:.1f}{unit}"
        return f"{int(x):,}{unit}"

    lines = [
        f"Wall time per Genie turn (median of {meta['turns']} turns per variant, threads of "
        f"{TURNS_PER_THREAD} turns, emulator at speed 0; {meta['machine']}):",
        "",
        "| variant | median ms | p90 ms | over memory ms | ms in checkpointer | checkpoints "
        "| write rows | put / put_writes / get_tuple | bytes stored per turn "
        "| of which node steps | bytes: turn 1 → 5 of a thread |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        calls = (
            "–"
            if r["puts_per_turn"] is None
            else f"{r['puts_per_turn']:.0f} / {r['put_writes_per_turn']:.0f} / "
            f"{r['get_tuple_per_turn']:.0f}"
        )
        growth = r["bytes_by_turn_of_thread"]
        share = r["node_steps_bytes_share"]
        lines.append(
            f"| {r['variant']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} "
            f"| {num(r['over_memory_ms'])} | {num(r['ms_inside_checkpointer_per_turn'])} "
            f"| {num(r['checkpoints_per_turn'])} | {num(r['write_rows_per_turn'])} | {calls} "
            f"| {num(r['bytes_per_turn'])} | {'–' if share is None else f'{share:.0%}'} "
            f"| {'–' if not growth else ' → '.join(f'{v:,}' for v in growth.values())} |"
        )
    lines += [
        "",
        "*over memory*: median minus InMemorySaver's median. *ms in checkpointer*: median "
        "time inside put / put_writes / get_tuple per turn, background writes included. "
        "*checkpoints* and *write rows*: what the thread's stored rows grew by per turn "
        "(the parent graph's and the node's steps'). Bytes as each store keeps them.",
        f"SQLite: {meta['sqlite']}. Postgres: {meta['postgres']}.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50, help="turns per variant")
    parser.add_argument("--quick", action="store_true", help="10 turns, no files")
    args = parser.parse_args(argv)
    if args.quick:
        args.turns = 10
    threads = max(1, -(-args.turns // TURNS_PER_THREAD))

    for key in [k for k in os.environ if k.startswith(("DATABRICKS_", "GENIE_"))]:
        if key != "GENIE_TEST_POSTGRES_URL":
            del os.environ[key]
    from genie_tools import GenieSettings
    from genie_tools.emulator import GenieEmulator

    settings = GenieSettings(qpm=100_000, poll_first_delay=0.01, poll_min_interval=0.01)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ckpt-bench-")))
        pg = stack.enter_context(postgres_database())
        variants = [
            Variant("client.ask (no graph)", "client"),
            Variant("InMemorySaver", "memory", "memory://"),
            Variant("SQLite", "sqlite", f"sqlite:///{work / 'a.db'}"),
        ]
        if pg:
            variants.append(Variant("Postgres", "postgres", pg))
        variants.append(
            Variant("SQLite, durability=sync", "sqlite", f"sqlite:///{work / 'b.db'}", "sync")
        )
        if pg:
            variants.append(Variant("Postgres, durability=sync", "postgres", pg, "sync"))
        else:
            print("no PostgreSQL (set GENIE_TEST_POSTGRES_URL): Postgres left out")
        emu = stack.enter_context(GenieEmulator(speed=0, qpm=100_000, seed=3))
        stack.enter_context(prepared(variants, emu, settings))
        for v in variants:  # warm-up: connections, caches, tables
            run_thread(v, 10_000, record=False)
        started = time.monotonic()
        for t in range(threads):
            shift = t % len(variants)
            for v in variants[shift:] + variants[:shift]:
                run_thread(v, t, record=True)
        took = time.monotonic() - started
    floor = statistics.median(variants[1].seconds)
    rows = [summary(v, None if v.kind == "client" else floor) for v in variants]
    meta = {
        "turns": threads * TURNS_PER_THREAD,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "sqlite": "a file in a temporary folder, SqliteSaver's defaults",
        "postgres": "GENIE_TEST_POSTGRES_URL"
        if os.environ.get("GENIE_TEST_POSTGRES_URL")
        else "a throwaway local cluster over loopback, fsync=off"
        if pg
        else "not available",
        "seconds": round(took, 1),
    }
    text = markdown(rows, meta)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{NAME}.json").write_text(
            json.dumps({"meta": meta, "variants": rows}, indent=2) + "\n"
        )
        (RESULTS / f"{NAME}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
