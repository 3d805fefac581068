"""The on-demand fuzzing run: at least 1,000 examples per surface, then a table of findings.

Run: ``python3 dev.py run python benchmarks/fuzz.py`` (about 10-20 minutes on two cores;
``--examples 200`` for a quicker look, ``--surface cli`` for one surface, ``--seed`` to
repeat a run, ``--json FILE`` to keep the findings).

The surfaces and their invariants are those of ``tests/test_fuzz.py`` (see
``tests/fuzz_surfaces.py``), against one live emulator on loopback. Unlike the test, a
run does not stop at the first failure: every example runs, each broken invariant is
counted under its signature (what broke and where), and the shortest input that broke it
is printed as its reproduction.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_env import Finding, FuzzEnv, unexpected  # noqa: E402
from fuzz_surfaces import SURFACES, Surface  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis.errors import UnsatisfiedAssumption  # noqa: E402


@dataclass
class SurfaceReport:
    """What one surface's run found."""

    surface: str
    examples: int = 0
    failing: int = 0
    seconds: float = 0.0
    found: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    shortest: dict[str, str] = field(default_factory=dict)

    def record(self, finding: Finding, case: Any) -> None:
        """Count ``finding`` and keep the shortest input that produced it."""
        self.failing += 1
        self.found[finding.signature] = self.found.get(finding.signature, 0) + 1
        text = f"{case!r}\n    → {str(finding).splitlines()[-1][:300]}"
        if finding.signature not in self.shortest or len(text) < len(
            self.shortest[finding.signature]
        ):
            self.shortest[finding.signature] = text


def run_surface(env: FuzzEnv, surface: Surface, examples: int, seed: int | None) -> SurfaceReport:
    """Check ``examples`` generated inputs of ``surface``; every finding is recorded."""
    report = SurfaceReport(surface.name)
    strategy = surface.strategy(env)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: the shortest input is kept instead
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def probe(case: Any) -> None:
        report.examples += 1
        env.log.sent.clear()  # (a check that sends nothing records nothing)
        try:
            outcome = surface.check(env, case)
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
            report.requests += len(env.log.sent)
        except UnsatisfiedAssumption:
            report.examples -= 1  # not a valid example (e.g. httpx cannot send it)
            raise
        except Finding as finding:
            report.record(finding, case)
        except Exception as exc:  # the fuzzer's own check broke: report it, go on
            report.record(unexpected(f"{surface.name} (fuzzer)", exc), case)

    if seed is not None:
        probe = hypothesis_seed(seed)(probe)
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # hypothesis itself stopped (e.g. a strategy could not draw)
        report.record(unexpected(f"{surface.name} (fuzzer stopped)", exc), "(generation)")
    report.seconds = time.perf_counter() - started
    return report


def print_reports(reports: list[SurfaceReport]) -> None:
    """The table, then every distinct failure with its count and shortest input."""
    print(f"\n{'surface':<14} {'examples':>9} {'failing':>8} {'distinct':>9} {'seconds':>8}")
    for r in reports:
        print(f"{r.surface:<14} {r.examples:>9} {r.failing:>8} {len(r.found):>9} {r.seconds:>8.1f}")
    print("\nwhere the examples ended (most common first; requests = recorded client requests):")
    for r in reports:
        common = sorted(r.outcomes.items(), key=lambda kv: -kv[1])[:8]
        print(
            f"  {r.surface} ({r.requests} requests): " + "; ".join(f"{k} ×{v}" for k, v in common)
        )
    total = sum(r.examples for r in reports)
    print(
        f"{'total':<14} {total:>9} {sum(r.failing for r in reports):>8} "
        f"{sum(len(r.found) for r in reports):>9}"
    )
    for r in reports:
        for signature, count in sorted(r.found.items(), key=lambda kv: -kv[1]):
            shortest = r.shortest[signature]
            print(f"\n[{r.surface}] {signature}  (×{count})\n  shortest input: {shortest}")


def main() -> int:
    """Run the surfaces and print what they found; exit 1 when anything was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per surface")
    parser.add_argument("--surface", action="append", choices=sorted(SURFACES), help="repeatable")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run")
    parser.add_argument("--json", type=Path, default=None, help="also write the findings here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the findings, not the clients' retries
    for key in [k for k in os.environ if k.startswith(("DATABRICKS_", "GENIE_"))]:
        if key != "GENIE_TOOLS_CACHE_DIR":
            del os.environ[key]  # the developer's workspace stays out of the run
    reports = []
    with tempfile.TemporaryDirectory(prefix="genie-fuzz-") as tmp:
        os.environ["DATABRICKS_CONFIG_FILE"] = str(Path(tmp) / "databrickscfg")
        env = FuzzEnv(Path(tmp))
        try:
            for name in args.surface or list(SURFACES):
                print(f"fuzzing {name}: {args.examples} examples…", flush=True)
                reports.append(run_surface(env, SURFACES[name], args.examples, args.seed))
        finally:
            env.close()
    print_reports(reports)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in reports], indent=2), encoding="utf-8")
    return 1 if any(r.found for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
