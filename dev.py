#!/usr/bin/env python3
"""One entry point for people and CI: installs what it needs, then runs the task.

    python3 dev.py demo        # the main job: ask Genie (the local emulator) a question
    python3 dev.py test        # the whole test suite (extra arguments go to pytest)
    python3 dev.py lint        # ruff (lint + format check) and mypy
    python3 dev.py run ARGS    # any command inside the project environment

Needs only Python >= 3.11. uv is used when it is on PATH; otherwise it is
installed with pip into ./.uv-bootstrap (a private venv, so an externally
managed system Python is left alone). The environment comes from the committed
uv.lock, with every extra, so what runs here is what CI runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BOOTSTRAP = ROOT / ".uv-bootstrap"


def _bootstrap_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    bindir = BOOTSTRAP / ("Scripts" if os.name == "nt" else "bin")
    uv = bindir / ("uv.exe" if os.name == "nt" else "uv")
    if not uv.exists():
        print("dev.py: uv not found; installing it into .uv-bootstrap with pip…", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(BOOTSTRAP)
        python = bindir / ("python.exe" if os.name == "nt" else "python")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"],
            check=True,
        )
    return str(uv)


def _run(cmd: list[str]) -> int:
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str]) -> int:
    """Run the task named by ``argv[0]``."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before any check of ours
        sys.exit(f"genie-tools needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    task, rest = argv[0], argv[1:]
    uv = _bootstrap_uv()
    sync = [uv, "sync", "--locked", "--all-extras", "--python", sys.executable]
    if os.environ.get("CI"):
        sync.append("--quiet")
    code = _run(sync)
    if code:
        return code
    run = [uv, "run", "--locked", "--all-extras", "--no-sync", "--python", sys.executable]
    if task == "demo":
        return _run([*run, "genie-tools", "demo", *rest])
    if task == "test":
        return _run([*run, "pytest", *rest])
    if task == "lint":
        return (
            _run([*run, "ruff", "check", "."])
            or _run([*run, "ruff", "format", "--check", "."])
            or _run([*run, "mypy"])
        )
    if task == "run":
        return _run([*run, *rest])
    print(f"dev.py: unknown task {task!r}; try: demo, test, lint, run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
