"""The analyst graph as a models-from-code file: ``graph`` for ``langgraph.json``.

With a Databricks workspace configured (``DATABRICKS_HOST`` / ``DATABRICKS_CONFIG_PROFILE``
or ``GENIE_HOST`` / ``GENIE_PROFILE``, and ``GENIE_SPACE_IDS``) it asks those spaces;
otherwise it starts the local Genie emulator in this process, so ``langgraph dev`` works
offline. The LangGraph server supplies the checkpointer.

Example:
    >>> from graphs.analyst import graph  # doctest: +SKIP
    >>> graph.invoke({"messages": [("user", "revenue by year")]})  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from genie_tools import GenieClient, GenieSettings
from genie_tools.graph import create_analyst_graph
from genie_tools.tools import GenieSpace


def _build() -> Any:
    settings = GenieSettings()
    configured = any(
        [settings.host, settings.profile, os.environ.get("DATABRICKS_HOST"),
         os.environ.get("DATABRICKS_CONFIG_PROFILE")]
    )  # fmt: skip
    if configured:
        with GenieClient(settings=settings) as client:
            infos = (
                [client.get_space(s) for s in settings.space_ids]
                if settings.space_ids
                else client.list_spaces()
            )
        spaces = [GenieSpace(id=i.space_id, name=i.title, description=i.description) for i in infos]
        return create_analyst_graph(spaces, settings=settings).compile()
    from genie_tools.emulator import GenieEmulator

    emulator = GenieEmulator(speed=float(os.environ.get("GENIE_EMULATOR_SPEED", "0.5"))).start()
    atexit.register(emulator.stop)
    spaces = [
        GenieSpace(id=s.id, name=s.title, description=s.description) for s in emulator.config.spaces
    ]
    return create_analyst_graph(spaces, workspace=emulator.workspace_client()).compile()


graph = _build()
