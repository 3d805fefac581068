"""Property-based fuzzing of every surface (issue 12, point 7), against a live emulator.

Seven surfaces — tool arguments, client arguments, graph state, CLI arguments, settings
from the environment, space declarations, the emulator's HTTP API — each with its
invariants (see :mod:`fuzz_surfaces`): a result or a typed error, no request outside
Genie's paths, no 5xx for a client's mistake, no traceback or token in what a model or a
user reads.

Profiles (``HYPOTHESIS_PROFILE``):

* ``ci`` (default): a few hundred examples in all, derandomized so CI is repeatable,
  within 2 minutes on two cores;
* ``deep``: 1,000 examples per surface, random — or run ``benchmarks/fuzz.py``, which
  keeps going after a failure and prints a table of what it found.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fuzz_env import Finding, FuzzEnv
from fuzz_surfaces import SURFACES, Surface
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,  # nothing written to the tree; failures print their reproduction
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("deep", max_examples=1000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def examples(surface: Surface) -> int:
    """The surface's examples under the active profile (CI: its share; deep: 1,000)."""
    return surface.ci_examples if PROFILE == "ci" else max(1000, surface.ci_examples)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzEnv]:
    """One emulator and its clients for every surface of the module."""
    environment = FuzzEnv(Path(tmp_path_factory.mktemp("fuzz")))
    yield environment
    environment.close()


def _fuzz(name: str) -> Any:
    """A test that checks ``examples()`` inputs of the surface ``name``."""
    surface = SURFACES[name]

    @settings(settings.get_profile(PROFILE), max_examples=examples(surface))
    @given(data=st.data())
    def test(env: FuzzEnv, data: st.DataObject) -> None:
        built: dict[str, Any] = env.__dict__.setdefault("strategies", {})
        if name not in built:
            built[name] = surface.strategy(env)
        surface.check(env, data.draw(built[name], label=name))

    test.__doc__ = f"Fuzz the {name}: {surface.check.__doc__}"
    return test


test_tool_arguments = _fuzz("tools")
test_client_arguments = _fuzz("client")
test_graph_state = _fuzz("graph state")
test_cli_arguments = _fuzz("cli")
test_settings_from_the_environment = _fuzz("settings")
test_space_declarations = _fuzz("declarations")
test_emulator_http_api = _fuzz("http api")


def test_the_recorder_sees_what_leaves_genie(env: FuzzEnv) -> None:
    """The invariants' own detector: requests outside Genie's paths and logged tokens."""
    with env.log.recording():
        httpx.get(f"{env.url}/api/2.0/preview/scim/v2/Users")  # httpx, as the client sends
        with contextlib.suppress(Exception):  # the SDK's requests, as its auth sends
            env.w.api_client.do("GET", "/api/2.0/clusters/list")
    assert any(url.endswith("/api/2.0/clusters/list") for _, url in env.log.sent)
    with pytest.raises(Finding, match="left Genie's paths"):
        env.log.check("probe", env.url)
    with env.log.recording():
        httpx.get(f"{env.url}/api/2.0/genie/spaces/..%2F..%2Fscim")  # '/' once decoded
    with pytest.raises(Finding, match="an unchecked id reached a URL"):
        env.log.check("probe", env.url)
    with env.log.recording():
        logging.getLogger("genie_tools.probe").debug("sent with %s", env.token)
    with pytest.raises(Finding, match="token in genie_tools' log"):
        env.log.check("probe", env.url, secret=env.token)
