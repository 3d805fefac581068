"""genie-tools: Databricks Genie as LangChain tools and durable LangGraph nodes.

The local Genie emulator lives in :mod:`genie_tools.emulator` (extra ``emulator``).
"""

from __future__ import annotations

__version__ = "0.1.0"
