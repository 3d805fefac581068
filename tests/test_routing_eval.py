"""The offline router against the routing eval sets, from the metadata Genie serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genie_tools import GenieClient, GenieSettings
from genie_tools.emulator import GenieEmulator
from genie_tools.graph.router import OfflineRouter

EVAL = Path(__file__).parent / "eval"
RESULTS = Path(__file__).parent.parent / "benchmarks" / "results"


@pytest.fixture(scope="module")
def router(emu: GenieEmulator) -> tuple[OfflineRouter, dict[str, str]]:
    client = GenieClient(emu.workspace_client(), settings=GenieSettings(qpm=100_000))
    infos = [client.get_space(s.id) for s in emu.config.spaces]
    client.close()
    return OfflineRouter(infos), {i.space_id: i.title for i in infos}


def score(
    router: OfflineRouter, titles: dict[str, str], cases: list[dict[str, Any]]
) -> dict[str, list[bool]]:
    """Per kind, whether each case was routed right (ambiguous: the router asked)."""
    out: dict[str, list[bool]] = {"single": [], "multi": [], "ambiguous": []}
    for case in cases:
        route = router.route(case["question"])
        if case["kind"] == "ambiguous":
            out["ambiguous"].append(route.ask is not None and not route.spaces)
        else:
            out[case["kind"]].append(
                sorted(titles[s] for s in route.spaces) == sorted(case["expected"])
            )
    return out


def test_routing_accuracy(router: tuple[OfflineRouter, dict[str, str]]) -> None:
    """Top-1 on single-space questions >= 90 % over both sets; asks on ambiguous ones."""
    per_file = {}
    for name in ("routing.yaml", "routing_holdout.yaml"):
        cases = yaml.safe_load((EVAL / name).read_text())["cases"]
        assert len(cases) >= 60
        per_file[name] = score(*router, cases)
    both = {
        k: [ok for r in per_file.values() for ok in r[k]] for k in ("single", "multi", "ambiguous")
    }
    rows = ["| set | kind | right | rate |", "|---|---|---|---|"]
    for name, results in [*per_file.items(), ("both", both)]:
        for kind, oks in results.items():
            rows.append(
                f"| {name} | {kind} | {sum(oks)}/{len(oks)} | {100 * sum(oks) / len(oks):.1f} % |"
            )
    table = "\n".join(rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "routing_eval.md").write_text(table + "\n")
    rate = {k: sum(v) / len(v) for k, v in both.items()}
    assert rate["single"] >= 0.90, table
    assert rate["ambiguous"] >= 0.6, table  # asks rather than guesses
    assert rate["multi"] >= 0.6, table
    for results in per_file.values():
        assert sum(results["single"]) / len(results["single"]) >= 0.85, table


def test_follow_ups_go_to_the_previous_spaces(router: tuple[OfflineRouter, dict[str, str]]) -> None:
    offline, titles = router
    sales = next(s for s, t in titles.items() if t == "Sales & revenue")
    for follow_up in (
        "break that down by region",
        "only 1996",
        "what about 1997?",
        "top 5 instead",
    ):
        assert offline.route(follow_up, previous=[sales]).spaces == [sales], follow_up
    supply = next(s for s, t in titles.items() if t == "Supply chain")
    # a question that clearly names another topic is not a follow-up
    assert offline.route("Which suppliers have the most stock?", previous=[sales]).spaces == [
        supply
    ]
