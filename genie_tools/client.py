"""``GenieClient`` and ``AsyncGenieClient``: ask Databricks Genie, typed, frugal and safe.

Both clients run the same operations (:mod:`genie_tools._flows`); the sync one with
``httpx.Client`` and ``time.sleep``, the async one with ``httpx.AsyncClient`` and
``asyncio.sleep`` — hundreds of questions can wait on one event loop without a thread
each. Method names are the same; the async ones are coroutines (``iter_progress``
is an async iterator, also available as ``astream``).

Example:
    >>> from genie_tools import GenieClient
    >>> with GenieClient(space_id="01ef...") as genie:  # doctest: +SKIP
    ...     answer = genie.ask("What was total revenue by year?")
    ...     print(answer.result.to_markdown())
    ...     more = genie.ask("Only 1996", conversation_id=answer.conversation_id)
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

from genie_tools import _flows as flows
from genie_tools._base import ClientBase, Rating
from genie_tools._core import iter_async, iter_sync, run_async, run_sync
from genie_tools.arguments import check_batch
from genie_tools.errors import GenieError
from genie_tools.models import (
    AskOutcome,
    GenieAnswer,
    MessageRef,
    ProgressEvent,
    QueryResult,
    SpaceInfo,
)
from genie_tools.settings import GenieSettings
from genie_tools.transport import AsyncTransport, SyncTransport

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

__all__ = ["AsyncGenieClient", "GenieClient"]


class GenieClient(ClientBase):
    """Ask Genie from synchronous code.

    Args:
        workspace: Where to authenticate: a ``databricks.sdk.WorkspaceClient``, a
            ``databricks.sdk.config.Config``, a ``~/.databrickscfg`` profile name, or
            ``None`` for ``GENIE_HOST`` / ``GENIE_PROFILE`` / the SDK's default chain.
        space_id: The default space (else ``settings.space_id``).
        settings: Options; defaults come from ``GENIE_*`` environment variables.
        http_client: An ``httpx.Client`` to use (the caller closes it).

    Nothing touches the network until the first call.

    Example:
        >>> from databricks.sdk import WorkspaceClient
        >>> genie = GenieClient(WorkspaceClient(), space_id="01ef...")  # doctest: +SKIP
        >>> genie.ask("How many orders were placed in 1996?").result.rows  # doctest: +SKIP
        [[228626]]
    """

    def __init__(
        self,
        workspace: WorkspaceClient | Config | str | None = None,
        *,
        space_id: str | None = None,
        settings: GenieSettings | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(workspace, space_id=space_id, settings=settings)
        self._transport = SyncTransport(self._auth, self.settings, client=http_client)

    def ask(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,
    ) -> GenieAnswer:
        """Ask a question (a follow-up when ``conversation_id`` is given) and wait for the answer.

        Args:
            question: The question in natural language.
            space_id: The space (default: the client's).
            conversation_id: Continue this conversation instead of starting one.
            timeout: Seconds before giving up (default ``settings.timeout``, 600).

        Returns:
            The answer, with typed rows in ``answer.result``.

        Raises:
            QueryFailedError: Genie could not answer (its error type is attached).
            GenieTimeoutError: No answer in time; ``err.ref`` can be waited on again.
            RateLimitedError: The question budget would not allow it before the timeout.
            GenieError: Any other failure (auth, permission, not found, unavailable…).

        Example:
            >>> answer = genie.ask("What was total revenue by year?")  # doctest: +SKIP
            >>> answer.sql, answer.result.truncated  # doctest: +SKIP
        """
        flow = self._ask(question, space_id, conversation_id, timeout)
        return run_sync(flow, self._transport)

    def iter_progress(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[ProgressEvent]:
        """Ask like :meth:`ask`, yielding a :class:`ProgressEvent` on every status change.

        The last event has ``kind="answer"`` and carries the answer in ``event.answer``.

        Example:
            >>> for event in genie.iter_progress("Revenue by region"):  # doctest: +SKIP
            ...     print(event.kind, event.status, event.elapsed_seconds)
        """
        flow = self._ask(question, space_id, conversation_id, timeout)
        for item in iter_sync(flow, self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    def submit(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,
        not_before: dt.datetime | None = None,
    ) -> MessageRef:
        """Submit a question exactly once without waiting; pass the ref to :meth:`wait`.

        Args:
            question: The question.
            space_id: The space (default: the client's).
            conversation_id: Follow up in this conversation (``None``: a new one).
            timeout: Seconds for the whole submit, limiter waits included.
            not_before: When an earlier attempt to submit this question may have
                started (e.g. before a crash): Genie is searched for it first, and the
                message found is returned instead of asking again.

        Example:
            >>> ref = genie.submit("Top 5 customers by revenue")  # doctest: +SKIP
            >>> answer = genie.wait(ref)  # doctest: +SKIP
        """
        flow = self._submit(question, space_id, conversation_id, timeout, not_before)
        return run_sync(flow, self._transport)

    def iter_submit(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,
        not_before: dt.datetime | None = None,
    ) -> Iterator[ProgressEvent]:
        """:meth:`submit` as a stream of events (rate-limit waits, retries…).

        The last event has ``kind="submitted"`` (or ``"recovered"``) and the ref in
        ``event.ref``.
        """
        flow = self._submit(question, space_id, conversation_id, timeout, not_before)
        for item in iter_sync(flow, self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    def wait(self, ref: MessageRef, *, timeout: float | None = None) -> GenieAnswer:
        """Wait for a submitted message (also after a restart) and return its answer."""
        return run_sync(self._wait(ref, timeout), self._transport)

    def iter_wait(
        self, ref: MessageRef, *, timeout: float | None = None
    ) -> Iterator[ProgressEvent]:
        """:meth:`wait` as a stream of events; the last has ``kind="answer"`` and the answer."""
        for item in iter_sync(self._wait(ref, timeout), self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    def ask_many(
        self,
        questions: Sequence[str],
        *,
        space_id: str | None = None,
        concurrency: int = 4,
        timeout: float | None = None,
    ) -> list[AskOutcome]:
        """Ask several independent questions, ``concurrency`` at a time.

        Each question starts its own conversation; an error fails its own item only.

        Example:
            >>> outcomes = genie.ask_many(["Revenue by year", "Orders in 1996"])  # doctest: +SKIP
            >>> [o.ok for o in outcomes]  # doctest: +SKIP
            [True, True]
        """
        questions = check_batch(questions, concurrency)
        sid = self._space(space_id)

        def one(question: str) -> AskOutcome:
            try:
                return AskOutcome(
                    question, answer=self.ask(question, space_id=sid, timeout=timeout)
                )
            except GenieError as exc:
                return AskOutcome(question, error=exc)

        if not questions:
            return []
        with ThreadPoolExecutor(max_workers=min(concurrency, len(questions))) as pool:
            return list(pool.map(one, questions))

    def list_spaces(self) -> list[SpaceInfo]:
        """Every Genie space this principal can see."""
        return run_sync(flows.list_spaces_flow(self._ctx), self._transport)

    def get_space(self, space_id: str | None = None, *, refresh: bool = False) -> SpaceInfo:
        """A space's title, description, tables and columns and sample questions (cached).

        Example:
            >>> print(genie.get_space().to_markdown())  # doctest: +SKIP
        """
        sid = self._space(space_id)
        if refresh or sid not in self._spaces:
            self._spaces[sid] = run_sync(flows.get_space_flow(self._ctx, sid), self._transport)
        return self._spaces[sid]

    def get_result(
        self, ref: MessageRef | GenieAnswer, *, timeout: float | None = None
    ) -> QueryResult:
        """The query result of a finished message, re-running the query if it expired."""
        flow = flows.get_result_flow(self._ctx, self._ref(ref), timeout=self._timeout(timeout))
        return run_sync(flow, self._transport)

    def download_full_result(
        self, ref: MessageRef | GenieAnswer, *, timeout: float | None = None
    ) -> QueryResult:
        """Every row of the message's query, beyond Genie's 5,000-row cap."""
        flow = flows.download_flow(self._ctx, self._ref(ref), timeout=self._timeout(timeout))
        return run_sync(flow, self._transport)

    def send_feedback(
        self, ref: MessageRef | GenieAnswer, rating: Rating | bool, *, comment: str | None = None
    ) -> None:
        """Rate an answer (``POSITIVE``, ``NEGATIVE``, ``NONE``, or True / False)."""
        run_sync(self._feedback(ref, rating, comment), self._transport)

    def cancel(self, ref: MessageRef | GenieAnswer) -> None:
        """Cancel a message that is still being answered."""
        run_sync(self._cancel(ref), self._transport)

    def delete_conversation(self, conversation_id: str, *, space_id: str | None = None) -> None:
        """Delete a conversation and its messages."""
        run_sync(self._delete(conversation_id, space_id), self._transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._transport.close()

    def __enter__(self) -> GenieClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncGenieClient(ClientBase):
    """Ask Genie from async code: the same methods as :class:`GenieClient`, as coroutines.

    ``timeout`` arguments are Genie deadlines, not ``asyncio.timeout``: when one runs out
    the client raises :class:`~genie_tools.errors.GenieTimeoutError` carrying the
    message's ref (so it can be waited on again) instead of cancelling mid-request.

    Args:
        workspace: As for :class:`GenieClient`.
        space_id: The default space.
        settings: Options; defaults from ``GENIE_*`` environment variables.
        http_client: An ``httpx.AsyncClient`` to use (the caller closes it).

    Example:
        >>> async with AsyncGenieClient(space_id="01ef...") as genie:  # doctest: +SKIP
        ...     answers = await asyncio.gather(*(genie.ask(q) for q in questions))
        ...     async for event in genie.iter_progress("Revenue by region"):
        ...         print(event.kind, event.status)
    """

    def __init__(
        self,
        workspace: WorkspaceClient | Config | str | None = None,
        *,
        space_id: str | None = None,
        settings: GenieSettings | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(workspace, space_id=space_id, settings=settings)
        self._transport = AsyncTransport(self._auth, self.settings, client=http_client)

    async def ask(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> GenieAnswer:
        """Ask a question and wait for the answer (see :meth:`GenieClient.ask`)."""
        flow = self._ask(question, space_id, conversation_id, timeout)
        return await run_async(flow, self._transport)

    async def iter_progress(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[ProgressEvent]:
        """Ask, yielding progress events; the last one (``kind="answer"``) carries the answer.

        Example:
            >>> async for event in genie.iter_progress("Revenue by year"):  # doctest: +SKIP
            ...     print(event.kind, event.status)
        """
        flow = self._ask(question, space_id, conversation_id, timeout)
        async for item in iter_async(flow, self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    astream = iter_progress
    """Alias of :meth:`iter_progress` (LangChain's naming for async streams)."""

    async def submit(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        not_before: dt.datetime | None = None,
    ) -> MessageRef:
        """Submit a question exactly once without waiting (see :meth:`GenieClient.submit`)."""
        flow = self._submit(question, space_id, conversation_id, timeout, not_before)
        return await run_async(flow, self._transport)

    async def iter_submit(
        self,
        question: str,
        *,
        space_id: str | None = None,
        conversation_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        not_before: dt.datetime | None = None,
    ) -> AsyncIterator[ProgressEvent]:
        """:meth:`submit` as events; the last is ``submitted`` (or ``recovered``) with the ref."""
        flow = self._submit(question, space_id, conversation_id, timeout, not_before)
        async for item in iter_async(flow, self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    async def wait(
        self,
        ref: MessageRef,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> GenieAnswer:
        """Wait for a submitted message and return its answer."""
        return await run_async(self._wait(ref, timeout), self._transport)

    async def iter_wait(
        self,
        ref: MessageRef,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[ProgressEvent]:
        """:meth:`wait` as events; the last has ``kind="answer"`` and the answer."""
        async for item in iter_async(self._wait(ref, timeout), self._transport):
            if isinstance(item, ProgressEvent):
                yield item

    async def ask_many(
        self,
        questions: Sequence[str],
        *,
        space_id: str | None = None,
        concurrency: int = 4,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[AskOutcome]:
        """Ask several questions, ``concurrency`` at a time, on this event loop."""
        questions = check_batch(questions, concurrency)
        sid = self._space(space_id)
        gate = asyncio.Semaphore(concurrency)

        async def one(question: str) -> AskOutcome:
            async with gate:
                try:
                    answer = await self.ask(question, space_id=sid, timeout=timeout)
                    return AskOutcome(question, answer=answer)
                except GenieError as exc:
                    return AskOutcome(question, error=exc)

        return list(await asyncio.gather(*(one(q) for q in questions)))

    async def list_spaces(self) -> list[SpaceInfo]:
        """Every Genie space this principal can see."""
        return await run_async(flows.list_spaces_flow(self._ctx), self._transport)

    async def get_space(self, space_id: str | None = None, *, refresh: bool = False) -> SpaceInfo:
        """A space's description, tables and sample questions (cached)."""
        sid = self._space(space_id)
        if refresh or sid not in self._spaces:
            self._spaces[sid] = await run_async(
                flows.get_space_flow(self._ctx, sid), self._transport
            )
        return self._spaces[sid]

    async def get_result(
        self,
        ref: MessageRef | GenieAnswer,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> QueryResult:
        """The query result of a finished message, re-running the query if it expired."""
        flow = flows.get_result_flow(self._ctx, self._ref(ref), timeout=self._timeout(timeout))
        return await run_async(flow, self._transport)

    async def download_full_result(
        self,
        ref: MessageRef | GenieAnswer,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> QueryResult:
        """Every row of the message's query, beyond Genie's 5,000-row cap."""
        flow = flows.download_flow(self._ctx, self._ref(ref), timeout=self._timeout(timeout))
        return await run_async(flow, self._transport)

    async def send_feedback(
        self, ref: MessageRef | GenieAnswer, rating: Rating | bool, *, comment: str | None = None
    ) -> None:
        """Rate an answer (``POSITIVE``, ``NEGATIVE``, ``NONE``, or True / False)."""
        await run_async(self._feedback(ref, rating, comment), self._transport)

    async def cancel(self, ref: MessageRef | GenieAnswer) -> None:
        """Cancel a message that is still being answered."""
        await run_async(self._cancel(ref), self._transport)

    async def delete_conversation(
        self, conversation_id: str, *, space_id: str | None = None
    ) -> None:
        """Delete a conversation and its messages."""
        await run_async(self._delete(conversation_id, space_id), self._transport)

    async def close(self) -> None:
        """Release the connection pool."""
        await self._transport.close()

    async def __aenter__(self) -> AsyncGenieClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
