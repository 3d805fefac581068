"""pytest plugin: a ``genie_emulator`` fixture for your own Genie tests.

Installed with genie-tools (entry point ``pytest11``). The fixture starts one
emulator per test (instant latency, generous rate limit) and stops it after::

    def test_my_agent(genie_emulator):
        w = genie_emulator.workspace_client()
        ...

Override its options with a marker:
``@pytest.mark.genie_emulator(speed=1, qpm=5, config="spaces.yaml")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

DEFAULTS: dict[str, Any] = {"speed": 0.0, "qpm": 1000, "seed": 0}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``genie_emulator`` marker."""
    config.addinivalue_line(
        "markers", "genie_emulator(**options): options for the genie_emulator fixture"
    )


@pytest.fixture
def genie_emulator(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A running :class:`~genie_tools.emulator.GenieEmulator` for one test."""
    from genie_tools.emulator import GenieEmulator

    options = dict(DEFAULTS)
    marker = request.node.get_closest_marker("genie_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    with GenieEmulator(**options) as emulator:
        yield emulator
