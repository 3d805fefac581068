"""An optional LLM backend: any LangChain chat model writes the SQL.

The model sees what a Genie space holds — tables and column comments, joins,
instructions, measures, example question → SQL pairs — and the conversation so
far, and answers with one Databricks SQL query. Its SQL is never trusted: the
engine checks it is one read-only SELECT over the space's tables and that it
compiles against the data, and falls back to the built-in engine otherwise.
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

from genie_tools.emulator.spaces import SpaceDecl

logger = logging.getLogger(__name__)
_FENCE = re.compile(r"```(?:sql)?\s*(.*?)```", re.S | re.I)

SYSTEM_PROMPT = """You are Genie, writing Databricks SQL for one data space.
Answer with exactly one read-only SQL query (SELECT or WITH) in a ```sql fenced block,
using only the tables below with their fully qualified names. If the question cannot
be answered from these tables, answer with the single word UNANSWERABLE.

{space}"""


def describe_space(space: SpaceDecl) -> str:
    """The space as the model reads it: tables, columns, joins, instructions, examples."""
    lines = [f"Space: {space.title}", space.description, "", "Tables:"]
    for table in space.tables:
        lines.append(f"- {table.name}: {table.description}")
        lines.extend(f"    {name}: {comment}" for name, comment in table.columns.items())
    if space.joins:
        lines.append("Joins:")
        lines.extend(f"- {j.left} = {j.right}" for j in space.joins)
    if space.measures:
        lines.append("Measures:")
        lines.extend(f"- {m.name}: {m.sql}" for m in space.measures)
    if space.instructions:
        lines += ["Instructions:", space.instructions]
    if space.example_sqls:
        lines.append("Examples:")
        for e in space.example_sqls:
            lines += [f"Q: {e.question}", f"```sql\n{e.sql.strip()}\n```"]
    return "\n".join(lines)


def extract_sql(text: str) -> str | None:
    """The SQL in a model's reply: a fenced block, or the reply itself when it is a query.

    Example:
        >>> extract_sql("Here you go: ```sql SELECT 1 ```")
        'SELECT 1'
    """
    match = _FENCE.search(text)
    candidate = (match.group(1) if match else text).strip().rstrip(";").strip()
    if re.match(r"(?is)^(select|with)\b", candidate):
        return candidate
    return None


class LlmSqlWriter:
    """Asks a chat model for the SQL of a question in one space.

    Args:
        model: Any LangChain ``BaseChatModel`` (or runnable taking messages).
        space: The space the questions are about.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> from genie_tools.emulator.spaces import default_spaces_path, load_spaces
        >>> space = load_spaces(default_spaces_path())[0]
        >>> model = FakeListChatModel(responses=["```sql SELECT 1 ```"])
        >>> LlmSqlWriter(model, space).write("anything", [])
        'SELECT 1'
    """

    def __init__(self, model: Any, space: SpaceDecl) -> None:
        self.model = model
        self.space = space
        self._system = SYSTEM_PROMPT.format(space=describe_space(space))

    def messages(self, question: str, history: list[tuple[str, str | None]]) -> list[Any]:
        """The chat: the space, then each earlier turn (question and SQL), then the question."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        chat: list[Any] = [SystemMessage(self._system)]
        for asked, sql in history:
            chat.append(HumanMessage(asked))
            chat.append(AIMessage(f"```sql\n{sql}\n```" if sql else "UNANSWERABLE"))
        chat.append(HumanMessage(question))
        return chat

    def write(self, question: str, history: list[tuple[str, str | None]]) -> str | None:
        """The model's SQL, or None when it is unavailable or gives none."""
        try:
            reply = self.model.invoke(self.messages(question, history))
        except Exception:  # an unavailable model must not fail the question
            logger.warning("LLM backend failed; using the built-in engine", exc_info=True)
            return None
        content = getattr(reply, "content", reply)
        return extract_sql(content if isinstance(content, str) else str(content))


def load_chat_model(path: str) -> Any:
    """A chat model from ``"package.module:name"``: the object itself, or a factory's result.

    Example:
        >>> load_chat_model("genie_tools.missing:model")  # doctest: +SKIP
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"llm must look like 'package.module:name', not {path!r}")
    target = getattr(importlib.import_module(module_name), attr)
    return target() if callable(target) and not hasattr(target, "invoke") else target
