"""Genie as LangChain tools: ``GenieToolkit(...).get_tools()`` for any agent.

Every tool works with ``invoke`` and ``ainvoke`` natively (a sync and an async
function over the same helpers), returns ``(content, artifact)``: compact markdown for
the model and the typed object for the program, and turns Genie's failures into
``ToolMessage(status="error")`` whose text says what to do. Follow-ups continue the
Genie conversation of the agent's thread (``configurable.thread_id``) in that space.

Example:
    >>> from genie_tools import GenieToolkit
    >>> toolkit = GenieToolkit(spaces=["01ef...sales", "01ef...supply"])  # doctest: +SKIP
    >>> tools = toolkit.get_tools()  # doctest: +SKIP
    >>> [t.name for t in tools]  # doctest: +SKIP
    ['ask_genie', 'list_genie_spaces', 'describe_genie_space', 'get_genie_query_result',
     'reset_genie_conversation']
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, BaseToolkit, StructuredTool, ToolException
from langchain_core.tools.base import ArgsSchema
from langgraph.errors import GraphBubbleUp
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from genie_tools.arguments import check_timeout, clean_text, validation_problems
from genie_tools.client import AsyncGenieClient, GenieClient
from genie_tools.client_pair import ClientPair
from genie_tools.conversations import ConversationStore, InMemoryConversationStore, thread_id_from
from genie_tools.errors import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    GenieError,
    GenieTimeoutError,
    InvalidIdError,
    NotFoundError,
    PermissionDeniedError,
    QueryFailedError,
    RateLimitedError,
    ResultExpiredError,
)
from genie_tools.formatting import (
    DEFAULT_TOKEN_BUDGET,
    TokenCounter,
    answer_content,
    approx_tokens,
    page_content,
)
from genie_tools.ids import check_id, check_optional_id
from genie_tools.models import GenieAnswer, MessageRef, QueryResult, SpaceInfo
from genie_tools.progress import PROGRESS_EVENT, areport, progress_data, report
from genie_tools.settings import GenieSettings, check_space_id

__all__ = ["PROGRESS_EVENT", "GenieSpace", "GenieToolkit", "create_genie_tool", "explain"]

logger = logging.getLogger(__name__)


class GenieSpace(BaseModel):
    """A space the tools may ask, with the name and description the model sees.

    Name and description default to the space's own title and description, fetched
    from Genie the first time the tools are built.
    """

    model_config = ConfigDict(frozen=True)
    id: str
    name: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> GenieSpace:
        check_space_id(self.id)
        return self


def _strict_schema(schema: dict[str, Any]) -> None:
    """Leave defaults out of the JSON schema: OpenAI strict mode wants every field listed."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_strict_schema)

    @model_validator(mode="before")
    @classmethod
    def _clean_text(cls, data: Any) -> Any:
        # A model's arguments are untrusted text: control characters are removed, and a
        # lone surrogate (which no HTTP body can carry) is refused, naming the argument.
        if not isinstance(data, dict):
            return data
        cleaned = {}
        for key, value in data.items():
            if isinstance(value, str):
                try:
                    value = clean_text(value, what=f"argument {key!r}")
                except GenieError as exc:
                    raise ValueError(exc.message) from None
            cleaned[key] = value
        return cleaned


class _ListArgs(_Args):
    pass


class _PageArgs(_Args):
    message_id: str = Field(
        description="The message_id printed under an earlier ask_genie answer in this chat."
    )
    page: int | None = Field(default=None, ge=1, description="Page number, from 1 (default 1).")
    page_size: int | None = Field(
        default=None, ge=1, le=1000, description="Rows per page (default 50)."
    )


class GenieToolkit(BaseToolkit):
    """Genie spaces as LangChain tools.

    Args:
        spaces: The spaces to ask: ids, :class:`GenieSpace` entries (to set the names
            the model sees), or ``"all"`` for every space the principal can see.
        workspace: Where to authenticate (``WorkspaceClient``, ``Config``, profile name,
            or ``None`` for the SDK's default chain); ignored when clients are given.
        settings: Client options (timeouts, rate limit, ...); ``GENIE_*`` env by default.
        client: A :class:`GenieClient` to use for ``invoke`` (built lazily otherwise).
        async_client: An :class:`AsyncGenieClient` for ``ainvoke`` (built lazily,
            sharing the sync client's workspace, otherwise).
        store: Where conversation ids and recent answers are kept per thread.
        token_budget: About how many tokens an answer may take in the model's context.
        count_tokens: How tokens are counted (default: ~4 characters per token).
        timeout: Seconds to wait for an answer (default: the client's timeout).

    Nothing touches the network in the constructor; :meth:`get_tools` fetches the
    spaces' titles and descriptions (once) when they were not given.

    Example:
        >>> toolkit = GenieToolkit(spaces=[GenieSpace(id="01efsales", name="sales")])
        >>> toolkit.token_budget
        2000
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spaces: list[GenieSpace] | Literal["all"]
    workspace: Any = None
    settings: GenieSettings | None = None
    client: GenieClient | None = None
    async_client: AsyncGenieClient | None = None
    store: Any = Field(default_factory=InMemoryConversationStore)
    token_budget: int = Field(default=DEFAULT_TOKEN_BUDGET, ge=200)
    count_tokens: TokenCounter = approx_tokens
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    _resolved: list[GenieSpace] | None = PrivateAttr(default=None)
    _clients: ClientPair = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # one typed error, without echoing the inputs (a workspace holds credentials)
            problems = validation_problems(exc, whole="toolkit")
            raise ConfigurationError(f"Invalid GenieToolkit configuration: {problems}") from None

    @field_validator("timeout", mode="before")
    @classmethod
    def _check_timeout(cls, value: Any) -> float | None:
        # The client's own rule (finite, > 0), checked when the toolkit is built.
        return None if value is None else check_timeout(value)

    @model_validator(mode="before")
    @classmethod
    def _spaces_from_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("spaces"), (list, tuple)):
            data = {
                **data,
                "spaces": [GenieSpace(id=s) if isinstance(s, str) else s for s in data["spaces"]],
            }
        return data

    @model_validator(mode="after")
    def _check(self) -> GenieToolkit:
        if self.spaces != "all":
            if not self.spaces:
                raise ConfigurationError("GenieToolkit needs at least one space (or 'all').")
            ids = [s.id for s in self.spaces]
            names = [s.name for s in self.spaces if s.name]
            if len(set(ids)) != len(ids) or len(set(names)) != len(names):
                raise ConfigurationError("GenieToolkit spaces must have distinct ids and names.")
        if not isinstance(self.store, ConversationStore):
            raise ConfigurationError("store must implement genie_tools.ConversationStore.")
        return self

    # clients and spaces, lazily -------------------------------------------------
    def model_post_init(self, context: Any, /) -> None:  # noqa: D102
        self._clients = ClientPair(
            workspace=self.workspace,
            settings=self.settings,
            client=self.client,
            async_client=self.async_client,
        )

    def sync_client(self) -> GenieClient:
        """The client used by ``invoke`` (created on first use)."""
        return self._clients.sync

    def async_twin(self) -> AsyncGenieClient:
        """The client used by ``ainvoke`` (created on first use, same workspace)."""
        return self._clients.aio

    def resolved_spaces(self) -> list[GenieSpace]:
        """The spaces with their names and descriptions (fetched from Genie if not given)."""
        if self._resolved is not None:
            return self._resolved
        client = self.sync_client()
        if self.spaces == "all":
            infos = client.list_spaces()
            spaces = [
                GenieSpace(id=i.space_id, name=i.title, description=i.description) for i in infos
            ]
        else:
            spaces = []
            for s in self.spaces:
                if s.name and s.description:
                    spaces.append(s)
                    continue
                info = client.get_space(s.id)
                spaces.append(
                    GenieSpace(
                        id=s.id,
                        name=s.name or info.title,
                        description=s.description or info.description,
                    )
                )
        if not spaces:
            raise ConfigurationError("No Genie space is visible to this principal.")
        names = [_tool_safe(s.name or s.id) for s in spaces]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                "Two Genie spaces have the same title; give them names: "
                "GenieToolkit(spaces=[GenieSpace(id=..., name=...), ...])."
            )
        self._resolved = [
            GenieSpace(id=s.id, name=n, description=s.description)
            for s, n in zip(spaces, names, strict=True)
        ]
        return self._resolved

    # tools ----------------------------------------------------------------------
    def get_tools(self) -> list[BaseTool]:
        """The five Genie tools (fetches the spaces' titles once if they were not given)."""
        spaces = self.resolved_spaces()
        ops = _Operations(self, spaces)
        return [
            ops.ask_tool(),
            ops.list_tool(),
            ops.describe_tool(),
            ops.page_tool(),
            ops.reset_tool(),
        ]


def create_genie_tool(
    space_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    workspace: Any = None,
    settings: GenieSettings | None = None,
    client: GenieClient | None = None,
    async_client: AsyncGenieClient | None = None,
    store: ConversationStore | None = None,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    timeout: float | None = None,
) -> BaseTool:
    """One tool that asks one Genie space.

    The tool's name and description come from the space's title and description
    (one request to Genie, now) unless both are given.

    Example:
        >>> tool = create_genie_tool("01efsales", name="ask_sales",
        ...                          description="Sales figures from Genie.")
        >>> tool.name, sorted(tool.args)
        ('ask_sales', ['new_conversation', 'question'])
    """
    toolkit = GenieToolkit(
        spaces=[GenieSpace(id=space_id, name=name, description=description)],
        workspace=workspace,
        settings=settings,
        client=client,
        async_client=async_client,
        store=store or InMemoryConversationStore(),
        token_budget=token_budget,
        timeout=timeout,
    )
    (space,) = toolkit.resolved_spaces()
    tool_name = name or f"ask_genie_{_tool_safe(space.name or space_id)}"
    return _Operations(toolkit, [space]).ask_tool(name=tool_name, about=description)


class _Operations:
    """The tools' behaviour, sync and async, for one toolkit and its resolved spaces."""

    def __init__(self, toolkit: GenieToolkit, spaces: list[GenieSpace]) -> None:
        self.toolkit = toolkit
        self.spaces = spaces
        self.by_name = {s.name: s for s in spaces}
        self.store: ConversationStore = toolkit.store

    # ask_genie ---------------------------------------------------------------
    def ask_tool(self, *, name: str = "ask_genie", about: str | None = None) -> BaseTool:
        several = len(self.spaces) > 1
        fields: dict[str, Any] = {
            "question": (
                str,
                Field(
                    description="The question in plain language, as a business user would ask "
                    "it. Follow-ups ('only 1996', 'break that down by region') continue the "
                    "previous question in the same space."
                ),
            ),
        }
        if several:
            names = tuple(s.name for s in self.spaces)
            fields["space"] = (
                Literal[names] | None,
                Field(
                    default=None, description="Which Genie space to ask (see the tool description)."
                ),
            )
        fields["new_conversation"] = (
            bool | None,
            Field(
                default=None,
                description="True to start a fresh Genie conversation instead of following up.",
            ),
        )
        schema = create_model("AskGenieArgs", __base__=_Args, **fields)
        if several:
            listing = "\n".join(
                f"- {s.name}: {s.description or ''}".rstrip(": ") for s in self.spaces
            )
            text = (
                "Ask Databricks Genie a data question; it writes and runs SQL over the "
                f"space's tables and answers with numbers and the SQL. Spaces:\n{listing}"
            )
        else:
            space = self.spaces[0]
            text = about or (
                f"Ask Databricks Genie about {space.name}"
                + (f": {space.description}" if space.description else ".")
                + " It writes and runs SQL and answers with numbers and the SQL."
            )

        def ask(
            question: str,
            space: str | None = None,
            new_conversation: bool | None = None,
            *,
            config: RunnableConfig,
        ) -> tuple[str, GenieAnswer]:
            target, conversation, thread = self._prepare(space, new_conversation, config)
            client = self.toolkit.sync_client()
            try:
                answer = self._ask_sync(client, question, target, conversation, config)
            except NotFoundError:
                if conversation is None:
                    raise
                self.store.reset(thread, target.id)  # the conversation was deleted: start over
                answer = self._ask_sync(client, question, target, None, config)
            self.store.remember(thread, answer.ref)
            return self._content(answer, target), answer

        async def aask(
            question: str,
            space: str | None = None,
            new_conversation: bool | None = None,
            *,
            config: RunnableConfig,
        ) -> tuple[str, GenieAnswer]:
            target, conversation, thread = self._prepare(space, new_conversation, config)
            client = self.toolkit.async_twin()
            try:
                answer = await self._ask_async(client, question, target, conversation, config)
            except NotFoundError:
                if conversation is None:
                    raise
                self.store.reset(thread, target.id)
                answer = await self._ask_async(client, question, target, None, config)
            self.store.remember(thread, answer.ref)
            return self._content(answer, target), answer

        return self._tool(name, text, schema, ask, aask)

    def _prepare(
        self, space: str | None, new_conversation: bool | None, config: RunnableConfig
    ) -> tuple[GenieSpace, str | None, str]:
        thread = thread_id_from(config)
        target = self._space(space, thread)
        conversation = None if new_conversation else self.store.conversation(thread, target.id)
        try:
            conversation = check_optional_id(conversation, kind="conversation")
        except InvalidIdError as exc:
            # A store is storage the tool does not control: a corrupted entry is dropped
            # (the next question starts a new conversation) and reported, never sent.
            self.store.reset(thread, target.id)
            raise InvalidIdError(
                f"The stored Genie conversation of this thread was malformed and has been "
                f"forgotten ({exc.message}); ask again to start a new conversation.",
                kind="conversation",
            ) from None
        return target, conversation, thread

    def _space(self, name: str | None, thread: str) -> GenieSpace:
        if name is not None:
            if name in self.by_name:
                return self.by_name[name]
            raise ToolException(f"Unknown Genie space {name!r}: use one of {self._names()}.")
        if len(self.spaces) == 1:
            return self.spaces[0]
        # a follow-up without a space goes where this thread's conversation is
        active = [s for s in self.spaces if self.store.conversation(thread, s.id)]
        if len(active) == 1:
            return active[0]
        raise ToolException(f"Say which Genie space to ask: space is one of {self._names()}.")

    def _names(self) -> str:
        return ", ".join(repr(s.name) for s in self.spaces)

    def _content(self, answer: GenieAnswer, space: GenieSpace) -> str:
        return answer_content(
            answer,
            space_name=space.name or space.id,
            token_budget=self.toolkit.token_budget,
            count_tokens=self.toolkit.count_tokens,
        )

    def _ask_sync(
        self,
        client: GenieClient,
        question: str,
        space: GenieSpace,
        conversation: str | None,
        config: RunnableConfig,
    ) -> GenieAnswer:
        answer: GenieAnswer | None = None
        for event in client.iter_progress(
            question, space_id=space.id, conversation_id=conversation, timeout=self.toolkit.timeout
        ):
            if event.kind == "answer":
                answer = event.answer
            else:
                report(progress_data(event, space_id=space.id, space=space.name or space.id))
        assert answer is not None
        return answer

    async def _ask_async(
        self,
        client: AsyncGenieClient,
        question: str,
        space: GenieSpace,
        conversation: str | None,
        config: RunnableConfig,
    ) -> GenieAnswer:
        answer: GenieAnswer | None = None
        async for event in client.iter_progress(
            question, space_id=space.id, conversation_id=conversation, timeout=self.toolkit.timeout
        ):
            if event.kind == "answer":
                answer = event.answer
            else:
                await areport(progress_data(event, space_id=space.id, space=space.name or space.id))
        assert answer is not None
        return answer

    # list / describe ------------------------------------------------------------
    def list_tool(self) -> BaseTool:
        def content() -> tuple[str, list[dict[str, Any]]]:
            rows = [s.model_dump() for s in self.spaces]
            text = "Genie spaces:\n" + "\n".join(
                f"- {s.name}: {s.description or '(no description)'}" for s in self.spaces
            )
            return text, rows

        def run(*, config: RunnableConfig) -> tuple[str, list[dict[str, Any]]]:
            return content()

        async def arun(*, config: RunnableConfig) -> tuple[str, list[dict[str, Any]]]:
            return content()

        return self._tool(
            "list_genie_spaces",
            "List the Genie spaces you can ask, with what each one covers.",
            _ListArgs,
            run,
            arun,
        )

    def describe_tool(self) -> BaseTool:
        fields: dict[str, Any] = {}
        if len(self.spaces) > 1:
            names = tuple(s.name for s in self.spaces)
            fields["space"] = (Literal[names], Field(description="The space to describe."))
        schema = create_model("DescribeGenieSpaceArgs", __base__=_Args, **fields)

        def run(space: str | None = None, *, config: RunnableConfig) -> tuple[str, SpaceInfo]:
            target = self._space(space, thread_id_from(config))
            info = self.toolkit.sync_client().get_space(target.id)
            return _describe(info, target, self.toolkit), info

        async def arun(
            space: str | None = None, *, config: RunnableConfig
        ) -> tuple[str, SpaceInfo]:
            target = self._space(space, thread_id_from(config))
            info = await self.toolkit.async_twin().get_space(target.id)
            return _describe(info, target, self.toolkit), info

        return self._tool(
            "describe_genie_space",
            "Describe a Genie space: its tables, their columns and sample questions. "
            "Use it to phrase questions the space can answer.",
            schema,
            run,
            arun,
        )

    # results ----------------------------------------------------------------------
    def page_tool(self) -> BaseTool:
        def locate(message_id: str, config: RunnableConfig) -> MessageRef:
            check_id(message_id, kind="message")
            ref = self.store.message(thread_id_from(config), message_id)
            if ref is None:
                raise ToolException(
                    f"Unknown message_id {message_id!r}: use the message_id printed under an "
                    "earlier ask_genie answer in this conversation."
                )
            return ref

        def paged(
            result: QueryResult, message_id: str, p: int | None, size: int | None
        ) -> tuple[str, QueryResult]:
            p, size = p or 1, size or 50
            text = page_content(
                result,
                message_id=message_id,
                page=p,
                page_size=size,
                token_budget=self.toolkit.token_budget,
                count_tokens=self.toolkit.count_tokens,
            )
            start = (p - 1) * size
            rows = QueryResult(
                columns=result.columns,
                rows=result.rows[start : start + size],
                truncated=result.truncated,
                statement_id=result.statement_id,
            )
            return text, rows

        def run(
            message_id: str,
            page: int | None = None,
            page_size: int | None = None,
            *,
            config: RunnableConfig,
        ) -> tuple[str, QueryResult]:
            result = self.toolkit.sync_client().get_result(locate(message_id, config))
            return paged(result, message_id, page, page_size)

        async def arun(
            message_id: str,
            page: int | None = None,
            page_size: int | None = None,
            *,
            config: RunnableConfig,
        ) -> tuple[str, QueryResult]:
            result = await self.toolkit.async_twin().get_result(locate(message_id, config))
            return paged(result, message_id, page, page_size)

        return self._tool(
            "get_genie_query_result",
            "Get more rows of an earlier Genie answer without asking Genie again.",
            _PageArgs,
            run,
            arun,
        )

    def reset_tool(self) -> BaseTool:
        fields: dict[str, Any] = {}
        if len(self.spaces) > 1:
            names = tuple(s.name for s in self.spaces)
            fields["space"] = (
                Literal[names] | None,
                Field(default=None, description="The space to start over in (default: all)."),
            )
        schema = create_model("ResetGenieConversationArgs", __base__=_Args, **fields)

        def reset(space: str | None, config: RunnableConfig) -> tuple[str, None]:
            thread = thread_id_from(config)
            if space is None and len(self.spaces) > 1:
                self.store.reset(thread)
                return "The next question to any Genie space starts a new conversation.", None
            target = self._space(space, thread)
            self.store.reset(thread, target.id)
            return f"The next question to {target.name} starts a new Genie conversation.", None

        def run(space: str | None = None, *, config: RunnableConfig) -> tuple[str, None]:
            return reset(space, config)

        async def arun(space: str | None = None, *, config: RunnableConfig) -> tuple[str, None]:
            return reset(space, config)

        return self._tool(
            "reset_genie_conversation",
            "Start a new Genie conversation, so the next question does not follow up on "
            "earlier ones.",
            schema,
            run,
            arun,
        )

    # plumbing -------------------------------------------------------------------------
    def _tool(
        self,
        name: str,
        description: str,
        schema: type[BaseModel],
        func: Callable[..., Any],
        coroutine: Callable[..., Any],
    ) -> BaseTool:
        return _GenieTool.from_function(
            func=_explained(func),
            coroutine=_aexplained(coroutine),
            name=name,
            description=description,
            args_schema=schema,
            response_format="content_and_artifact",
            handle_tool_error=True,
            handle_validation_error=_invalid_arguments,
        )


class _GenieTool(StructuredTool):
    """A structured tool whose call schema is its (strict-ready) argument schema as written."""

    @property
    def tool_call_schema(self) -> ArgsSchema:
        # The argument models hold only what the model fills in (the run config is
        # injected by name), and they leave defaults out of their JSON schema so that
        # OpenAI's strict mode, which lists every field as required, accepts them.
        return self.args_schema if self.args_schema is not None else super().tool_call_schema


def _invalid_arguments(exc: ValidationError) -> str:
    """A refused tool call as text for the model: each argument and why, never its value."""
    problems = validation_problems(exc, whole="arguments")
    return f"Invalid arguments, nothing was asked: {problems}. Fix them and call again."


def _unexpected(exc: Exception) -> ToolException:
    # Nothing but deliberate errors leaves a tool: a bug or an odd environment would
    # otherwise end the whole agent run. The traceback goes to the log, not to the model.
    logger.error("Genie tool failed unexpectedly", exc_info=exc)
    return ToolException(
        f"The Genie tool failed unexpectedly ({type(exc).__name__}); nothing more is known. "
        "Try again once; if it fails again, answer without Genie."
    )


def _explained(func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        try:
            return func(*args, config=config, **kwargs)
        except (ToolException, GraphBubbleUp):
            raise  # deliberate: an error for the model, or LangGraph's control flow
        except GenieError as exc:
            raise ToolException(explain(exc)) from exc
        except Exception as exc:
            raise _unexpected(exc) from exc

    _copy_signature(wrapper, func)
    return wrapper


def _aexplained(func: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        try:
            return await func(*args, config=config, **kwargs)
        except (ToolException, GraphBubbleUp):
            raise
        except GenieError as exc:
            raise ToolException(explain(exc)) from exc
        except Exception as exc:
            raise _unexpected(exc) from exc

    _copy_signature(wrapper, func)
    return wrapper


def _copy_signature(wrapper: Callable[..., Any], func: Callable[..., Any]) -> None:
    # LangChain reads the signature to find the RunnableConfig parameter to inject
    wrapper.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**func.__annotations__, "config": RunnableConfig}
    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__


def explain(exc: GenieError) -> str:
    """A Genie failure as text an agent can act on.

    Example:
        >>> explain(RateLimitedError("Too many questions.", retry_after=11.2))
        'Genie is rate limited: retry in 12 s (do not retry sooner). Too many questions.'
    """
    if isinstance(exc, RateLimitedError):
        wait = math.ceil(exc.retry_after)
        return f"Genie is rate limited: retry in {wait} s (do not retry sooner). {exc}"
    if isinstance(exc, CircuitOpenError):
        wait = math.ceil(exc.retry_after)
        return f"Genie keeps failing, so calls are paused for {wait} s. {exc}"
    if isinstance(exc, PermissionDeniedError):
        return f"No access to this Genie space: ask its owner for CAN RUN. {exc}"
    if isinstance(exc, AuthenticationError):
        return f"Genie rejected the credentials: check the Databricks login. {exc}"
    if isinstance(exc, GenieTimeoutError):
        return f"Genie did not answer in time; ask a simpler question or try again. {exc}"
    if isinstance(exc, ResultExpiredError):
        return f"The result has expired; ask the question again. {exc}"
    if isinstance(exc, QueryFailedError):
        return f"Genie could not answer this question; rephrase it. {exc}"
    if isinstance(exc, NotFoundError):
        return f"Not found: check the space or message id. {exc}"
    if isinstance(exc, InvalidIdError):
        return f"Invalid {exc.kind} id, nothing was sent to Genie: {exc}"
    if isinstance(exc, BadRequestError) and exc.status_code is None:
        return f"Refused before asking Genie: {exc}"  # a local check, e.g. the text
    return f"Genie failed: {exc}"


def _describe(info: SpaceInfo, space: GenieSpace, toolkit: GenieToolkit) -> str:
    lines = [f"## {space.name}", info.description or space.description or ""]
    for table in info.tables:
        lines.append(f"### {table.name}" + (f": {table.description}" if table.description else ""))
        lines.extend(
            f"- {c.name}" + (f": {c.description}" if c.description else "") for c in table.columns
        )
    if info.sample_questions:
        lines.append("Sample questions:")
        lines.extend(f"- {q}" for q in info.sample_questions)
    if not info.detailed:
        lines.append("(Tables and columns are visible to the space's editors only.)")
    text = "\n".join(line for line in lines if line)
    limit = toolkit.token_budget * 4
    return text if toolkit.count_tokens(text) <= toolkit.token_budget else text[:limit] + "\n…"


def _tool_safe(name: str) -> str:
    """A name a model can write: lower-case words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "space"
