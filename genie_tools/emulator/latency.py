"""The latency model: when a message enters each status.

A message's whole life is planned when it is created, so its status at any
instant is a pure function of the clock and its completion time is known
exactly (clients' detection lag can then be measured to the millisecond).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from genie_tools.emulator.config import LatencyConfig

QUERY_PHASES = (
    "SUBMITTED",
    "FETCHING_METADATA",
    "FILTERING_CONTEXT",
    "ASKING_AI",
    "PENDING_WAREHOUSE",
    "EXECUTING_QUERY",
)
# A clarification never reaches the warehouse.
TEXT_PHASES = ("SUBMITTED", "FETCHING_METADATA", "FILTERING_CONTEXT", "ASKING_AI")
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"})


@dataclass(frozen=True)
class Step:
    """The message enters ``status`` at ``at`` (seconds since the epoch)."""

    status: str
    at: float


class LatencyModel:
    """Draws status schedules from a :class:`LatencyConfig`, a speed and a seed.

    Example:
        >>> model = LatencyModel(LatencyConfig(), speed=0, seed=1)
        >>> [s.status for s in model.schedule(0.0, with_query=False)][-1]
        'COMPLETED'
    """

    def __init__(self, config: LatencyConfig, *, speed: float, seed: int) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = instant, 1 = realistic, 2 = twice as slow)")
        self.config = config
        self.speed = speed
        self._rng = random.Random(seed)

    def schedule(
        self, start: float, *, with_query: bool, terminal: str | None = "COMPLETED"
    ) -> list[Step]:
        """Plan a message created at ``start``.

        Args:
            start: Creation time (epoch seconds).
            with_query: Whether the answer runs SQL (PENDING_WAREHOUSE and
                EXECUTING_QUERY happen only then).
            terminal: The final status, or ``None`` for a message that never
                finishes (stuck in its last phase).

        Returns:
            The steps in order, the first at ``start``.
        """
        phases = QUERY_PHASES if with_query else TEXT_PHASES
        means = [self.config.phases.get(p, 0.0) for p in phases]
        if self.config.total_seconds is not None:
            # Keep the phases' proportions, stretched to the requested total.
            total = sum(means) or 1.0
            means = [m * self.config.total_seconds / total for m in means]
        steps: list[Step] = []
        at = start
        for phase, mean in zip(phases, means, strict=True):
            steps.append(Step(phase, at))
            at += self._draw(mean) * self.speed
        if terminal is not None:
            steps.append(Step(terminal, at))
        return steps

    def _draw(self, mean: float) -> float:
        if mean <= 0:
            return 0.0
        sigma = self.config.jitter
        if sigma == 0:
            return mean
        # A log-normal with this mean: long tails, never negative.
        return mean * math.exp(self._rng.gauss(-(sigma**2) / 2, sigma))
