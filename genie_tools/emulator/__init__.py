"""Genie in a box: a local, wire-compatible Genie server over DuckDB and TPC-H.

Start it with ``genie-tools emulator``, in Python with ``GenieEmulator``, or in
tests with the ``genie_emulator`` pytest fixture. Needs the ``emulator`` extra.

Example:
    >>> from genie_tools.emulator import GenieEmulator
    >>> with GenieEmulator(speed=0) as emu:  # doctest: +SKIP
    ...     print(emu.workspace_client().genie.list_spaces().spaces[0].title)
    Sales & revenue
"""

from __future__ import annotations

from genie_tools.emulator.config import ConfigError, EmulatorConfig
from genie_tools.emulator.faults import Fault
from genie_tools.emulator.inspect import MessageInfo, StatusEvent
from genie_tools.emulator.runner import GenieEmulator
from genie_tools.emulator.spaces import SpaceDecl, default_spaces_path, load_spaces

__all__ = [
    "ConfigError",
    "EmulatorConfig",
    "Fault",
    "GenieEmulator",
    "MessageInfo",
    "SpaceDecl",
    "StatusEvent",
    "default_spaces_path",
    "load_spaces",
]
