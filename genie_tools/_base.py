"""What ``GenieClient`` and ``AsyncGenieClient`` share: settings, auth, the operations' context.

Each operation is built here as a flow (:mod:`genie_tools._flows`); the two clients
only choose the driver that runs it (blocking or on the event loop).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from genie_tools import _flows as flows
from genie_tools._core import Bounded, Context, Flow
from genie_tools.arguments import check_ref, clean_question, clean_text
from genie_tools.auth import AuthSource
from genie_tools.cache import AnswerCache
from genie_tools.errors import BadRequestError, ConfigurationError
from genie_tools.ids import check_id, check_optional_id
from genie_tools.limits import HostLimits, settings_with_budget_hint
from genie_tools.models import GenieAnswer, MessageRef, SpaceInfo
from genie_tools.paths import conversation_path, message_path
from genie_tools.settings import GenieSettings

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

__all__ = ["ClientBase", "Rating"]

Rating = Literal["POSITIVE", "NEGATIVE", "NONE"]


class ClientBase:
    """What both clients share: settings, auth, the context of their operations."""

    def __init__(
        self,
        workspace: WorkspaceClient | Config | str | None,
        *,
        space_id: str | None,
        settings: GenieSettings | None,
    ) -> None:
        # An emulator's WorkspaceClient declares its budget; explicit settings still win.
        self.settings = settings_with_budget_hint(settings or GenieSettings(), workspace)
        self.workspace = workspace  # as given: an async twin authenticates the same way
        if space_id is not None:
            check_id(space_id, kind="space")  # InvalidIdError: a ConfigurationError
        self.space_id = space_id or self.settings.default_space_id
        self._auth = AuthSource(workspace, self.settings)
        cache = None
        if self.settings.cache_ttl_seconds > 0:
            cache = AnswerCache(
                ttl=self.settings.cache_ttl_seconds, max_entries=self.settings.cache_max_entries
            )
        self._ctx = Context(self.settings, self._auth, cache)
        self._spaces: dict[str, SpaceInfo] = {}

    def __repr__(self) -> str:
        where = self._auth.host if self._auth.ready else "host not resolved yet"
        return f"{type(self).__name__}({where}, space_id={self.space_id!r})"

    @property
    def cache(self) -> AnswerCache | None:
        """The answer cache (``None`` unless ``cache_ttl_seconds`` > 0); has hit/miss counters."""
        return self._ctx.cache

    @property
    def limits(self) -> HostLimits:
        """The process-wide rate limiter and circuit breaker of this workspace."""
        return self._ctx.limits

    def _space(self, space_id: str | None) -> str:
        # Every id is checked where it enters, before any flow (or request) starts.
        chosen = check_optional_id(space_id, kind="space") or self.space_id
        if not chosen:
            raise ConfigurationError(
                "No Genie space given: pass space_id=..., or set GENIE_SPACE_ID / "
                "GenieSettings(space_id=...)."
            )
        return check_id(chosen, kind="space")

    def _timeout(self, timeout: float | None) -> float:
        return flows.initial_timeout(self._ctx, timeout)

    @staticmethod
    def _ref(ref: MessageRef | GenieAnswer) -> MessageRef:
        return check_ref(ref)

    def _question(
        self, question: object, space_id: str | None, conversation_id: str | None
    ) -> tuple[str, str, str | None]:
        """The question (cleaned), its space and conversation, all checked.

        A typed error now, before connecting or sending anything.
        """
        space = self._space(space_id)
        conversation = check_optional_id(conversation_id, kind="conversation")
        return clean_question(question), space, conversation

    # Each operation as a flow; the subclasses only choose the driver.
    def _ask(
        self,
        question: str,
        space_id: str | None,
        conversation_id: str | None,
        timeout: float | None,
    ) -> Flow[GenieAnswer]:
        question, space, conversation = self._question(question, space_id, conversation_id)
        # Bounded: the timeout also covers connecting (host discovery, authentication).
        return Bounded(
            self._timeout(timeout),
            lambda left: flows.ask_flow(
                self._ctx, question, space_id=space, conversation_id=conversation, timeout=left
            ),
        )

    def _submit(
        self,
        question: str,
        space_id: str | None,
        conversation_id: str | None,
        timeout: float | None,
        not_before: dt.datetime | None = None,
    ) -> Flow[MessageRef]:
        question, space, conversation = self._question(question, space_id, conversation_id)
        return Bounded(
            self._timeout(timeout),
            lambda left: flows.submit_flow(
                self._ctx,
                question,
                space_id=space,
                conversation_id=conversation,
                timeout=left,
                not_before=not_before,
            ),
        )

    def _wait(self, ref: MessageRef, timeout: float | None) -> Flow[GenieAnswer]:
        checked = self._ref(ref)
        return Bounded(
            self._timeout(timeout),
            lambda left: flows.resume_flow(self._ctx, checked, timeout=left),
        )

    def _cancel(self, ref: MessageRef | GenieAnswer) -> Flow[None]:
        r = self._ref(ref)
        return flows.simple_flow(self._ctx, "DELETE", message_path(r), ref=r)

    def _delete(self, conversation_id: str, space_id: str | None) -> Flow[None]:
        path = conversation_path(self._space(space_id), conversation_id)
        return flows.simple_flow(self._ctx, "DELETE", path)

    def _feedback(
        self, ref: MessageRef | GenieAnswer, rating: Rating | bool, comment: str | None
    ) -> Flow[None]:
        r = self._ref(ref)
        body: dict[str, Any] = {"rating": self._rating(rating)}
        if comment is not None and (text := clean_text(comment, what="comment")):
            body["comment"] = text
        return flows.simple_flow(self._ctx, "POST", f"{message_path(r)}/feedback", json=body, ref=r)

    @staticmethod
    def _rating(rating: Rating | bool) -> str:
        if isinstance(rating, bool):
            return "POSITIVE" if rating else "NEGATIVE"
        value = str(rating).upper()
        if value not in ("POSITIVE", "NEGATIVE", "NONE"):
            raise BadRequestError(f"rating must be POSITIVE, NEGATIVE or NONE, not {rating!r}")
        return value
