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
from genie_tools.session import workspace_configured, workspace_spaces
from genie_tools.tools import GenieSpace


def _build() -> Any:
    settings = GenieSettings()
    if workspace_configured(None, settings):
        with GenieClient(settings=settings) as client:
            spaces = workspace_spaces(client, settings.space_ids)
        return create_analyst_graph(spaces, settings=settings).compile()
    from genie_tools.emulator import GenieEmulator

    emulator = GenieEmulator(speed=float(os.environ.get("GENIE_EMULATOR_SPEED", "0.5"))).start()
    atexit.register(emulator.stop)
    spaces = [
        GenieSpace(id=s.id, name=s.title, description=s.description) for s in emulator.config.spaces
    ]
    return create_analyst_graph(spaces, workspace=emulator.workspace_client()).compile()


graph = _build()
