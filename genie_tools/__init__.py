"""genie-tools: Databricks Genie as LangChain tools and durable LangGraph nodes.

The typed Genie client is :class:`GenieClient` (sync) / :class:`AsyncGenieClient`;
the local Genie emulator lives in :mod:`genie_tools.emulator` (extra ``emulator``).

Example:
    >>> from genie_tools import GenieClient, GenieSettings
    >>> GenieSettings().qpm
    5
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names, imported on first use (PEP 562) so that ``import genie_tools`` (and the
# emulator's pytest plugin, which imports it) stays light.
_EXPORTS = {
    "AsyncGenieClient": "genie_tools.client",
    "GenieClient": "genie_tools.client",
    "GenieSettings": "genie_tools.settings",
    "AskOutcome": "genie_tools.models",
    "GenieAnswer": "genie_tools.models",
    "MessageRef": "genie_tools.models",
    "ProgressEvent": "genie_tools.models",
    "QueryResult": "genie_tools.models",
    "SpaceInfo": "genie_tools.models",
    "GenieToolkit": "genie_tools.tools",
    "GenieSpace": "genie_tools.tools",
    "create_genie_tool": "genie_tools.tools",
    "ConversationStore": "genie_tools.conversations",
    "InMemoryConversationStore": "genie_tools.conversations",
    **{
        name: "genie_tools.errors"
        for name in (
            "AuthenticationError",
            "BadRequestError",
            "CircuitOpenError",
            "ConfigurationError",
            "GenieError",
            "GenieTimeoutError",
            "NotFoundError",
            "PermissionDeniedError",
            "QueryCancelledError",
            "QueryFailedError",
            "RateLimitedError",
            "ResultExpiredError",
            "ServiceUnavailableError",
            "WorkspaceUnreachableError",
        )
    },
}

__all__ = [
    "AskOutcome",
    "AsyncGenieClient",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConversationStore",
    "GenieAnswer",
    "GenieClient",
    "GenieError",
    "GenieSettings",
    "GenieSpace",
    "GenieTimeoutError",
    "GenieToolkit",
    "InMemoryConversationStore",
    "MessageRef",
    "NotFoundError",
    "PermissionDeniedError",
    "ProgressEvent",
    "QueryCancelledError",
    "QueryFailedError",
    "QueryResult",
    "RateLimitedError",
    "ResultExpiredError",
    "ServiceUnavailableError",
    "SpaceInfo",
    "WorkspaceUnreachableError",
    "__version__",
    "create_genie_tool",
]

if TYPE_CHECKING:
    from genie_tools.client import AsyncGenieClient, GenieClient
    from genie_tools.conversations import ConversationStore, InMemoryConversationStore
    from genie_tools.errors import (
        AuthenticationError,
        BadRequestError,
        CircuitOpenError,
        ConfigurationError,
        GenieError,
        GenieTimeoutError,
        NotFoundError,
        PermissionDeniedError,
        QueryCancelledError,
        QueryFailedError,
        RateLimitedError,
        ResultExpiredError,
        ServiceUnavailableError,
        WorkspaceUnreachableError,
    )
    from genie_tools.models import (
        AskOutcome,
        GenieAnswer,
        MessageRef,
        ProgressEvent,
        QueryResult,
        SpaceInfo,
    )
    from genie_tools.settings import GenieSettings
    from genie_tools.tools import GenieSpace, GenieToolkit, create_genie_tool


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'genie_tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
