"""Imports of optional dependencies that fail with the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra that provides it."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Args:
        module: Importable module name, e.g. ``"duckdb"``.
        extra: The genie-tools extra that provides it, e.g. ``"emulator"``.
        purpose: What needs it, for the message, e.g. ``"the Genie emulator"``.

    Returns:
        The imported module.

    Example:
        >>> json = require("json", extra="core", purpose="parsing")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the optional package {module!r}. "
            f"Install it with: pip install 'genie-tools[{extra}]' (or: uv sync --extra {extra})."
        ) from exc
