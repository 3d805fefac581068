"""Fault injection: the ways real Genie misbehaves, on demand and deterministic by seed.

Request faults act on HTTP requests (a burst of 5xx answers, a connection reset
before or after the request is handled, a slow response). Message faults act on
the next questions asked (stuck in EXECUTING_QUERY, FAILED with an error type,
CANCELLED, a result that expires as soon as it is ready).
"""

from __future__ import annotations

import random
import re
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RequestFaultKind = Literal["http_error", "connection_reset", "slow_response"]
MessageFaultKind = Literal["stuck", "failed", "cancelled", "expired_result"]
REQUEST_KINDS = ("http_error", "connection_reset", "slow_response")


class Fault(BaseModel):
    """One fault to inject.

    Attributes:
        kind: What goes wrong.
        count: How many times it fires (``None``: every time).
        skip: Let this many matching requests or questions through first.
        probability: Chance that a matching request or question is hit, drawn
            from the emulator's seeded generator (so runs repeat exactly).
        path: Regular expression searched in the request path (request faults).
        method: HTTP method to match (request faults).
        space_id: Only requests or questions for this space.
        status: HTTP status for ``http_error`` (500, 502, 503, 504 …).
        when: For ``connection_reset``: ``"before"`` drops the request unhandled;
            ``"after"`` handles it (a question is created) and then drops the
            response, the ambiguous failure clients must survive.
        delay_seconds: For ``slow_response``.
        error_type: For ``failed``: Genie's ``MessageErrorType``, e.g.
            ``RATE_LIMIT_EXCEEDED_GENERIC_EXCEPTION``.
        error_message: For ``failed``.

    Example:
        >>> Fault(kind="http_error", status=503, count=3, path="/messages/").kind
        'http_error'
    """

    model_config = ConfigDict(extra="forbid")

    kind: RequestFaultKind | MessageFaultKind
    count: int | None = Field(default=1, ge=1)
    skip: int = Field(default=0, ge=0)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    path: str | None = None
    method: str | None = None
    space_id: str | None = None
    status: int = Field(default=503, ge=500, le=599)
    when: Literal["before", "after"] = "before"
    delay_seconds: float = Field(default=2.0, ge=0)
    error_type: str = "SQL_EXECUTION_EXCEPTION"
    error_message: str = "Injected failure"

    @model_validator(mode="after")
    def _check_path(self) -> Fault:
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"path is not a valid regular expression: {exc}") from exc
        return self

    @property
    def is_request_fault(self) -> bool:
        """True for faults that act on HTTP requests rather than on questions."""
        return self.kind in REQUEST_KINDS


class _Armed:
    """A fault with its remaining budget."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.skip = fault.skip
        self.remaining = fault.count
        self.pattern = re.compile(fault.path) if fault.path else None

    def matches(self, method: str | None, path: str | None, space_id: str | None) -> bool:
        f = self.fault
        if f.space_id is not None and f.space_id != space_id:
            return False
        if f.method is not None and method is not None and f.method.upper() != method.upper():
            return False
        return not (self.pattern and path is not None and not self.pattern.search(path))


class FaultPlan:
    """The armed faults, consumed as they fire. Thread-safe."""

    def __init__(self, faults: list[Fault] | None = None, *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._armed: list[_Armed] = [_Armed(f) for f in faults or []]
        self.fired: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        """Arm one more fault."""
        with self._lock:
            self._armed.append(_Armed(fault))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[Fault]:
        """The faults still armed."""
        with self._lock:
            return [a.fault for a in self._armed]

    def take_request_fault(self, method: str, path: str, space_id: str | None) -> Fault | None:
        """The request fault that fires for this request, if any."""
        return self._take(True, method, path, space_id)

    def take_message_fault(self, space_id: str) -> Fault | None:
        """The message fault that fires for a new question in ``space_id``, if any."""
        return self._take(False, None, None, space_id)

    def _take(
        self, request: bool, method: str | None, path: str | None, space_id: str | None
    ) -> Fault | None:
        with self._lock:
            for armed in self._armed:
                if armed.fault.is_request_fault != request:
                    continue
                if not armed.matches(method, path, space_id):
                    continue
                if armed.skip > 0:
                    armed.skip -= 1
                    continue
                if self._rng.random() >= armed.fault.probability:
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        self._armed.remove(armed)
                self.fired[armed.fault.kind] = self.fired.get(armed.fault.kind, 0) + 1
                return armed.fault
        return None
