"""Genie in LangGraph: ``GenieState`` and the durable Genie node.

Example:
    >>> from genie_tools.graph import GenieState, create_genie_node
"""

from __future__ import annotations

from genie_tools.graph.analyst import AnalystState, compose_answer, create_analyst_graph
from genie_tools.graph.checkpoint import acheckpointer_from_url, checkpointer_from_url
from genie_tools.graph.node import GenieNodeState, create_genie_node, create_genie_subgraph
from genie_tools.graph.router import LLMRouter, OfflineRouter, Route, Router
from genie_tools.graph.state import GenieSpaceState, GenieState, merge_genie

__all__ = [
    "AnalystState",
    "GenieNodeState",
    "GenieSpaceState",
    "GenieState",
    "LLMRouter",
    "OfflineRouter",
    "Route",
    "Router",
    "acheckpointer_from_url",
    "checkpointer_from_url",
    "compose_answer",
    "create_analyst_graph",
    "create_genie_node",
    "create_genie_subgraph",
    "merge_genie",
]
