"""The analyst graph's own cost per turn, excluding Genie's time.

Run: ``python3 dev.py run python benchmarks/analyst_overhead.py``. Asks the emulator (speed
0, so Genie itself answers at once) N single-space turns on one thread, with an in-memory
and with a SQLite checkpointer, side by side. For each turn: the wall time of the whole
turn, and the part spent inside the Genie client (``answer.timings.elapsed_seconds``:
submit, polls, result); their difference is the graph's overhead — routing, the node's
three checkpointed steps, the answer and the checkpoints. Writes
``benchmarks/results/analyst_overhead.{json,md}``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from genie_tools import GenieAnswer, GenieSettings
from genie_tools.emulator import GenieEmulator
from genie_tools.graph import checkpointer_from_url, create_analyst_graph
from genie_tools.tools import GenieSpace

RESULTS = Path(__file__).parent / "results"
TURNS = 30
QUESTIONS = [f"What was total revenue in {1992 + i % 7}?" for i in range(TURNS)]


def measure(graph: Any, thread: str) -> list[dict[str, float]]:
    rows = []
    config = {"configurable": {"thread_id": thread}}
    for question in QUESTIONS:
        started = time.perf_counter()
        state = graph.invoke({"messages": [HumanMessage(content=question)]}, config)
        wall = time.perf_counter() - started
        genie = [
            GenieAnswer.model_validate(m.additional_kwargs["genie"]["answer"])
            for m in state["messages"][-2:]
            if isinstance(m, AIMessage) and "answer" in m.additional_kwargs.get("genie", {})
        ]
        inside = sum(a.timings.elapsed_seconds for a in genie)
        rows.append(
            {
                "wall_ms": 1000 * wall,
                "genie_ms": 1000 * inside,
                "overhead_ms": 1000 * (wall - inside),
            }
        )
    return rows


def main() -> None:
    with GenieEmulator(speed=0, qpm=100_000, seed=3) as emu, tempfile.TemporaryDirectory() as tmp:
        spaces = [GenieSpace(id=s.id, name=s.title) for s in emu.config.spaces]
        settings = GenieSettings(qpm=100_000)
        results: dict[str, Any] = {}
        for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp}/threads.db")):
            with checkpointer_from_url(url) as saver:
                graph = create_analyst_graph(
                    spaces, workspace=emu.workspace_client(), settings=settings
                ).compile(checkpointer=saver)
                measure(graph, f"warm-{name}")[:3]  # warm up: imports, connections, space metadata
                rows = measure(graph, name)
            results[name] = {
                key: round(statistics.median(r[key] for r in rows), 1)
                for key in ("wall_ms", "genie_ms", "overhead_ms")
            }
    head = f"| analyst turn, median of {TURNS} (emulator at speed 0) | wall ms |"
    lines = [
        head + " in the Genie client ms | graph overhead ms |",
        "|---|---|---|---|",
    ] + [
        f"| {name} checkpointer | {r['wall_ms']} | {r['genie_ms']} | {r['overhead_ms']} |"
        for name, r in results.items()
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analyst_overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "analyst_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
