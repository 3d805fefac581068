"""A Genie client for blocking code and its async twin, built on first use.

LangChain tools and LangGraph nodes run both ways (``invoke`` and ``ainvoke``); each
way needs its own client, authenticated alike and sharing the workspace's question
budget (the rate limiter is per host and process-wide).
"""

from __future__ import annotations

import threading
from typing import Any

from genie_tools.client import AsyncGenieClient, GenieClient
from genie_tools.settings import GenieSettings

__all__ = ["ClientPair"]


class ClientPair:
    """A :class:`GenieClient` and an :class:`AsyncGenieClient`, made when first needed.

    Args:
        workspace: Where to authenticate (``WorkspaceClient``, ``Config``, profile name,
            or ``None`` for the SDK's default chain); ignored for clients given.
        settings: Client options (``GENIE_*`` environment variables by default).
        client: A ready sync client.
        async_client: A ready async client; without one, the twin authenticates like
            ``client`` (or like ``workspace``).

    Example:
        >>> pair = ClientPair(workspace="my-profile")
        >>> pair  # nothing has touched the network
        ClientPair(sync=not built, async=not built)
    """

    def __init__(
        self,
        *,
        workspace: Any = None,
        settings: GenieSettings | None = None,
        client: GenieClient | None = None,
        async_client: AsyncGenieClient | None = None,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self._sync = client
        self._async = async_client
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = {True: "built", False: "not built"}
        return (
            f"ClientPair(sync={state[self._sync is not None]}, "
            f"async={state[self._async is not None]})"
        )

    @property
    def sync(self) -> GenieClient:
        """The client for blocking code."""
        with self._lock:
            if self._sync is None:
                self._sync = GenieClient(self.workspace, settings=self.settings)
            return self._sync

    @property
    def aio(self) -> AsyncGenieClient:
        """The client for the event loop."""
        with self._lock:
            if self._async is None:
                if self._sync is not None:
                    self._async = AsyncGenieClient(
                        self._sync.workspace, settings=self._sync.settings
                    )
                else:
                    self._async = AsyncGenieClient(self.workspace, settings=self.settings)
            return self._async
