"""``GenieSettings``: every client option, from arguments or ``GENIE_*`` environment variables.

Credentials are *not* settings: they come from the Databricks SDK (a ``WorkspaceClient``,
a ``Config``, a profile or the SDK's default chain). ``GENIE_HOST`` and
``GENIE_PROFILE`` only say which workspace / profile the SDK should use when no
client or config is passed.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from genie_tools.ids import check_id

__all__ = ["GenieSettings", "check_host", "check_space_id"]


def check_host(host: str) -> str:
    """Validate a workspace URL: HTTPS, except on loopback (a local emulator).

    Args:
        host: e.g. ``https://adb-123.4.azuredatabricks.net`` or ``http://127.0.0.1:8765``.

    Returns:
        The host without a trailing slash.

    Raises:
        ValueError: Not a URL, or plain HTTP to a non-loopback host (tokens would
            travel in clear text).

    Example:
        >>> check_host("http://127.0.0.1:8765/")
        'http://127.0.0.1:8765'
        >>> check_host("http://example.com")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: host 'http://example.com' must use https:// ...
    """
    parts = urlsplit(host.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"host {host!r} is not a workspace URL; expected e.g. https://<workspace>.cloud.databricks.com"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"host {host!r} must use https:// (plain http is only allowed for loopback "
            "addresses such as 127.0.0.1 or localhost, e.g. a local emulator)"
        )
    return host.strip().rstrip("/")


def check_space_id(value: str) -> str:
    """Validate the shape of a Genie space id (:func:`genie_tools.ids.check_id`).

    Raises:
        InvalidIdError: Not a Genie id (a :class:`ValueError`, so pydantic validators
            report it as a validation error).

    Example:
        >>> check_space_id("01ef0123abcd")
        '01ef0123abcd'
    """
    return check_id(value, kind="space")


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class GenieSettings(BaseSettings):
    """Options of :class:`~genie_tools.client.GenieClient` and ``AsyncGenieClient``.

    Every field can be set with an environment variable ``GENIE_<FIELD>`` (e.g.
    ``GENIE_SPACE_ID``, ``GENIE_QPM``, ``GENIE_TIMEOUT``); arguments win over the
    environment. ``GENIE_SPACE_IDS`` takes a comma-separated list.

    Example:
        >>> s = GenieSettings(space_id="01ef0123abcd", qpm=10, timeout=120)
        >>> s.default_space_id, s.qpm, s.timeout
        ('01ef0123abcd', 10, 120.0)
    """

    model_config = SettingsConfigDict(
        env_prefix="GENIE_", extra="forbid", validate_default=True, frozen=True
    )

    # where ---------------------------------------------------------------
    host: str | None = Field(
        default=None, description="Workspace URL, when no WorkspaceClient/Config is given."
    )
    profile: str | None = Field(
        default=None, description="~/.databrickscfg profile, when no client/config is given."
    )
    space_id: str | None = Field(default=None, description="Default Genie space.")
    space_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Spaces this application uses (comma-separated)."
    )

    # waiting -------------------------------------------------------------
    timeout: float = Field(
        default=600.0, gt=0, le=24 * 3600, description="Seconds before ask() gives up."
    )
    poll_first_delay: float = Field(default=0.15, gt=0, le=60)
    poll_min_interval: float = Field(default=0.1, gt=0, le=60)
    poll_max_interval: float = Field(default=5.0, gt=0, le=300)
    stall_seconds: float | None = Field(
        default=120.0, gt=0, description="Unchanged status for this long is a stall event."
    )
    cancel_on_stall: bool = Field(
        default=False, description="Cancel the message and raise when it stalls."
    )

    # requests ------------------------------------------------------------
    http_timeout: float = Field(default=30.0, gt=0, le=600)
    connect_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds to reach the workspace and authenticate (also caps the SDK's "
        "retries); an unreachable host fails within this.",
    )
    max_retries: int = Field(default=4, ge=0, le=20, description="Retries of a failed request.")
    retry_backoff_base: float = Field(default=0.25, gt=0, le=60)
    retry_backoff_max: float = Field(default=8.0, gt=0, le=600)
    max_connections: int = Field(default=20, ge=1, le=10_000)
    submit_recovery_seconds: float = Field(
        default=8.0,
        ge=0,
        le=600,
        description="How long to look for a question whose submit ended ambiguously.",
    )
    clock_skew_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="Allowed server/client clock difference."
    )

    # budget --------------------------------------------------------------
    qpm: int = Field(default=5, ge=1, le=100_000, description="Questions per window per workspace.")
    rate_window_seconds: float = Field(default=60.0, gt=0, le=3600)
    rate_burst: int | None = Field(
        default=None,
        ge=1,
        description="Most questions at once; None allows the whole qpm in a burst.",
    )
    breaker_failure_threshold: int = Field(default=10, ge=1, le=1000)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)

    # results -------------------------------------------------------------
    rerun_expired_results: bool = True
    cache_ttl_seconds: float = Field(
        default=0.0, ge=0, description="Cache identical first questions (0 disables)."
    )
    cache_max_entries: int = Field(default=256, ge=1, le=1_000_000)

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str | None) -> str | None:
        return check_host(value) if value else None

    @field_validator("space_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("space_id")
    @classmethod
    def _valid_space_id(cls, value: str | None) -> str | None:
        return None if value is None else check_space_id(value)

    @field_validator("space_ids")
    @classmethod
    def _valid_space_ids(cls, value: list[str]) -> list[str]:
        return [check_space_id(item) for item in value]

    @model_validator(mode="after")
    def _consistent(self) -> GenieSettings:
        if self.poll_min_interval > self.poll_max_interval:
            raise ValueError(
                f"poll_min_interval ({self.poll_min_interval}) must not exceed "
                f"poll_max_interval ({self.poll_max_interval})"
            )
        if self.retry_backoff_base > self.retry_backoff_max:
            raise ValueError("retry_backoff_base must not exceed retry_backoff_max")
        if self.rate_burst is not None and self.rate_burst > self.qpm:
            raise ValueError(f"rate_burst ({self.rate_burst}) must not exceed qpm ({self.qpm})")
        if self.host and self.profile:
            raise ValueError("set host or profile, not both (a profile names its own host)")
        return self

    @property
    def default_space_id(self) -> str | None:
        """``space_id``, else the first of ``space_ids``."""
        return self.space_id or (self.space_ids[0] if self.space_ids else None)
