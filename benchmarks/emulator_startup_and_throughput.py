"""Emulator figures: first start, warm start, idle RSS, and get_message requests/s.

Run: ``python3 dev.py run python benchmarks/emulator_startup_and_throughput.py``.
Writes ``benchmarks/results/emulator.json`` and ``.md``. Each start is the real
``genie-tools emulator`` command in a subprocess, timed from launch to its
"listening" line; load comes from this process over loopback, so client and
server do not share a core's GIL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
CLI = str(Path(sys.executable).parent / "genie-tools")


def start_emulator(data_dir: str) -> tuple[subprocess.Popen[str], float, str, str]:
    """Launch the CLI; return the process, seconds to ready, url and token."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [CLI, "emulator", "--port", "0", "--speed", "0", "--qpm", "100000", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    ready = time.perf_counter() - began
    token = proc.stdout.readline().split("token:")[1].strip()
    return proc, ready, first.rsplit(" ", 1)[1].strip(), token


def stop(proc: subprocess.Popen[str]) -> None:
    """Interrupt and reap."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def hammer(url: str, path: str, token: str, *, concurrency: int, seconds: float) -> float:
    """Requests per second for GET ``path`` from ``concurrency`` keep-alive clients."""
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.get(path)
                r.raise_for_status()
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - began)


def main() -> None:
    """Measure and write the results."""
    first, warm, idle = [], [], []
    rps: dict[str, list[float]] = {"1 connection": [], "16 connections": []}
    for _ in range(3):
        with tempfile.TemporaryDirectory() as cache:
            proc, seconds, _, _ = start_emulator(cache)
            first.append(seconds)
            stop(proc)
            proc, seconds, url, token = start_emulator(cache)
            warm.append(seconds)
            time.sleep(2)
            idle.append(rss_mib(proc.pid))
            headers = {"Authorization": f"Bearer {token}"}
            space = httpx.get(f"{url}/api/2.0/genie/spaces", headers=headers).json()["spaces"][0]
            started = httpx.post(
                f"{url}/api/2.0/genie/spaces/{space['space_id']}/start-conversation",
                headers=headers,
                json={"content": "What was total revenue by year?"},
            ).json()
            path = (
                f"/api/2.0/genie/spaces/{space['space_id']}/conversations/"
                f"{started['conversation_id']}/messages/{started['message_id']}"
            )
            rps["1 connection"].append(
                asyncio.run(hammer(url, path, token, concurrency=1, seconds=3))
            )
            rps["16 connections"].append(
                asyncio.run(hammer(url, path, token, concurrency=16, seconds=3))
            )
            stop(proc)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "runs": 3,
        "first_start_s": {"median": statistics.median(first), "all": first},
        "warm_start_s": {"median": statistics.median(warm), "all": warm},
        "idle_rss_mib": {"median": statistics.median(idle), "all": idle},
        "get_message_rps": {k: {"median": statistics.median(v), "all": v} for k, v in rps.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "emulator.json").write_text(json.dumps(report, indent=2))
    lines = [
        "| measure (median of 3, TPC-H SF 0.1) | value |",
        "|---|---|",
        f"| first start (generate TPC-H + serve) | {report['first_start_s']['median']:.2f} s |",
        f"| warm start | {report['warm_start_s']['median']:.2f} s |",
        f"| idle RSS | {report['idle_rss_mib']['median']:.0f} MiB |",
    ]
    for k, v in report["get_message_rps"].items():
        lines.append(f"| get_message, {k} | {v['median']:.0f} req/s |")
    table = "\n".join(lines)
    (RESULTS / "emulator.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
