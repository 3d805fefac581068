"""How long the emulator's NL→SQL engine takes per question (target: none over 200 ms).

Run: ``python3 dev.py run python benchmarks/nl2sql_latency.py``. Replays every turn of
``tests/eval/nl2sql.yaml`` and ``nl2sql_extra.yaml`` through ``SpaceEngine.interpret``
in-process (conversation history included), five rounds, and writes
``benchmarks/results/nl2sql_latency.{json,md}``.
The time covers reading the question, planning, writing and checking the SQL and
transpiling it to DuckDB — not running the query, which the latency model schedules.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from genie_tools.emulator.config import DataConfig
from genie_tools.emulator.data import Database, default_data_dir
from genie_tools.emulator.engine import Interpretation, SpaceEngine
from genie_tools.emulator.evaluation import load_eval_set
from genie_tools.emulator.spaces import default_spaces_path, load_spaces

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ROUNDS = 5


def main() -> None:
    """Measure and write the results."""
    db = Database(DataConfig(), default_data_dir())
    engines = {s.title: SpaceEngine(s, db.cursor) for s in load_spaces(default_spaces_path())}
    began = time.perf_counter()
    for engine in engines.values():
        engine.prepare()
    prepare_s = time.perf_counter() - began
    cases = [
        case
        for name in ("nl2sql.yaml", "nl2sql_extra.yaml")
        for case in load_eval_set(ROOT / "tests" / "eval" / name).cases
    ]
    per_turn: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for case in cases:
            history: list[Interpretation] = []
            for n, turn in enumerate(case.turns):
                t0 = time.perf_counter()
                history.append(engines[case.space].interpret(turn.question, history))
                per_turn.setdefault(f"{case.id}#{n}", []).append(time.perf_counter() - t0)
    medians = sorted(statistics.median(v) * 1000 for v in per_turn.values())
    worst = max(max(v) * 1000 for v in per_turn.values())
    slowest = max(per_turn, key=lambda k: statistics.median(per_turn[k]))
    report = {
        "questions": len(per_turn),
        "rounds": ROUNDS,
        "engine_prepare_s": prepare_s,
        "median_ms": statistics.median(medians),
        "p95_ms": medians[int(0.95 * (len(medians) - 1))],
        "max_of_medians_ms": medians[-1],
        "max_single_ms": worst,
        "slowest_question": slowest,
        "target_ms": 200,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nl2sql_latency.json").write_text(json.dumps(report, indent=2))
    table = "\n".join(
        [
            f"| NL→SQL engine, {len(per_turn)} eval questions x {ROUNDS} rounds | ms |",
            "|---|---|",
            f"| median per question | {report['median_ms']:.2f} |",
            f"| p95 (of per-question medians) | {report['p95_ms']:.2f} |",
            f"| slowest question (median) | {report['max_of_medians_ms']:.2f} |",
            f"| slowest single run | {report['max_single_ms']:.2f} |",
            f"| one-off data reading per start (3 spaces) | {prepare_s * 1000:.0f} |",
        ]
    )
    (RESULTS / "nl2sql_latency.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
