"""Crash stress of the durable Genie node: SIGKILLs at random points, SQLite and Postgres.

Run: ``python3 dev.py run python benchmarks/graph_crash_stress.py`` (about 1-2 minutes;
``--cold`` starts every turn as a new interpreter, about 10 minutes; ``--quick`` is a
smoke test that writes nothing).
Writes ``benchmarks/results/graph_crash_stress.json`` (every turn and kill) and ``.md``.

For each checkpointer, turns run on threads of two turns (a first question, then a
follow-up in the same Genie conversation), each in its own process (tests/crash_child.py)
talking to the emulator in this process (messages take about ``--latency`` s) through a
proxy that answers question POSTs 0.15 s late. Each turn is SIGKILLed once at a point
aimed at in turn from: a random instant of the first 0.15 s, the end of ``prepare``, a
random instant of ``submit``, right after Genie received the question (before the turn
knows its ids), a random instant of ``wait``, just after Genie completed the message, and
right after the answer came back (before it is checkpointed). A restarted turn is killed
again with probability 0.35 (at most 3 kills per turn). Then it restarts until it ends.
The seed drives every choice and is printed. The parent graph runs with
``durability="sync"`` as the README asks (``--durability`` to try LangGraph's others).

A kill's *phase* is where the turn really was (its step markers and the emulator's
message times), not where it was aimed. The emulator is the referee: a *duplicate* is a
second message with the turn's question; a *lost turn* is a turn whose thread does not
end with the answer to its own message; a follow-up in another Genie conversation than
its thread's is counted too.

Postgres: ``GENIE_TEST_POSTGRES_URL`` (a URL that may create databases), else a
throwaway cluster (tests/postgres_fixture.py), else Postgres is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NAME = "graph_crash_stress"
sys.path.insert(0, str(ROOT / "tests"))

from crash_child import (  # noqa: E402
    PHASES,
    ColdChild,
    DelayProxy,
    ForkServer,
    StressReport,
    TurnSpec,
    run_stress,
)


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh database on GENIE_TEST_POSTGRES_URL or a throwaway cluster (None: none)."""
    import psycopg
    from postgres_fixture import _pg_bin, _throwaway_cluster

    with contextlib.ExitStack() as stack:
        server = os.environ.get("GENIE_TEST_POSTGRES_URL")
        if not server:
            bindir = _pg_bin()
            if bindir is None:
                yield None
                return
            server = stack.enter_context(_throwaway_cluster(bindir))
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_env() -> dict[str, str]:
    """This environment without the developer's Databricks / Genie settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GENIE_"))}


def table(reports: list[StressReport], mode: str, durability: str) -> str:
    lines = [
        f"Kills by the phase the turn was in (seed {reports[0].seed}, {mode} processes, "
        f"parent graph durability={durability!r}, messages ~{reports[0].latency:g} s):",
        "",
        "| phase at the kill | " + " | ".join(r.backend for r in reports) + " |",
        "|---|" + "---:|" * len(reports),
    ]
    for phase in PHASES:
        counts = [r.by_phase().get(phase, 0) for r in reports]
        lines.append(f"| {phase} | " + " | ".join(str(c) for c in counts) + " |")
    rows = [
        ("**kills**", lambda r: len(r.kills)),
        ("turns (threads of 2)", lambda r: len(r.turns)),
        ("turns killed more than once", lambda r: sum(t.kills > 1 for t in r.turns)),
        ("restarts", lambda r: sum(t.restarts for t in r.turns)),
        ("**duplicates** (extra asks seen by Genie)", lambda r: r.duplicates),
        ("**lost turns** (no answer to their question)", lambda r: r.lost),
        ("follow-ups in another conversation", lambda r: r.wrong_conversation),
        ("how the last restart went on", lambda r: _actions(r)),
        ("seconds", lambda r: r.seconds),
    ]
    lines += ["", "| outcome | " + " | ".join(r.backend for r in reports) + " |"]
    lines += ["|---|" + "---:|" * len(reports)]
    for label, value in rows:
        lines.append(f"| {label} | " + " | ".join(str(value(r)) for r in reports) + " |")
    return "\n".join(lines)


def _actions(report: StressReport) -> str:
    counts: dict[str, int] = {}
    for t in report.turns:
        if t.restarts:
            for a in t.actions:
                counts[a] = counts.get(a, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--kills", type=int, default=30, help="kills per checkpointer")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--cold", action="store_true", help="a new interpreter per turn")
    parser.add_argument(
        "--durability",
        choices=["sync", "async", "exit"],
        default="sync",
        help="the parent graph's durability (the README asks for sync)",
    )
    parser.add_argument("--quick", action="store_true", help="5 kills, SQLite, no files")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.no_postgres = 5, True
    print(f"seed={args.seed}", flush=True)

    from genie_tools.emulator import GenieEmulator

    mode = "cold" if args.cold else "forked"
    reports: list[StressReport] = []
    env = child_env()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crash-stress-")))
        backends = [("sqlite", f"sqlite:///{work / 'checkpoints.db'}")]
        if not args.no_postgres:
            pg = stack.enter_context(postgres_database())
            if pg is None:
                print("no PostgreSQL (set GENIE_TEST_POSTGRES_URL): Postgres skipped")
            else:
                backends.append(("postgres", pg))
        if args.cold:

            def start(spec: TurnSpec, mode: str) -> Any:
                return ColdChild(spec, mode, env=env)

        else:
            start = stack.enter_context(ForkServer(work, env=env)).start
        for backend, url in backends:
            # a fresh emulator per checkpointer: the questions repeat from one to the next
            with (
                GenieEmulator(speed=1, qpm=100_000, seed=args.seed) as emu,
                DelayProxy(emu.url) as proxy,
            ):
                emu.set_latency(total_seconds=args.latency)
                proxy.response_delay = 0.15
                space = next(s.id for s in emu.config.spaces if s.title == "Sales & revenue")
                extra = ("--durability", args.durability)
                spec = TurnSpec(proxy.url, emu.token, space, url, "", "", "", extra)
                reports.append(
                    run_stress(
                        start,
                        emu,
                        spec,
                        seed=args.seed,
                        min_kills=args.kills,
                        latency=args.latency,
                        backend=backend,
                    )
                )
    text = table(reports, mode, args.durability)
    print()
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        suffix = "_cold" if args.cold else ""
        data = {
            "seed": args.seed,
            "mode": mode,
            "parent_durability": args.durability,
            "latency_seconds": args.latency,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "reports": [
                {
                    "backend": r.backend,
                    "kills": len(r.kills),
                    "duplicates": r.duplicates,
                    "lost": r.lost,
                    "wrong_conversation": r.wrong_conversation,
                    "seconds": r.seconds,
                    "by_phase": r.by_phase(),
                    "kill_log": [dataclasses.asdict(k) for k in r.kills],
                    "turns": [dataclasses.asdict(t) for t in r.turns],
                }
                for r in reports
            ],
        }
        (RESULTS / f"{NAME}{suffix}.json").write_text(json.dumps(data, indent=2) + "\n")
        (RESULTS / f"{NAME}{suffix}.md").write_text(text + "\n")
    bad = sum(r.duplicates + r.lost + r.wrong_conversation for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
