"""The emulator's configuration: data, spaces, limits, latency, auth and faults.

Everything is optional: ``EmulatorConfig()`` is three TPC-H spaces, one user
with a bearer token, 5 questions per minute and a latency of a few seconds. A
YAML file (``genie-tools emulator --config FILE``) overrides any part, and may
declare a user's own spaces over their own DuckDB, Parquet or CSV files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genie_tools.emulator.faults import Fault
from genie_tools.emulator.spaces import SpaceDecl, default_spaces_path, load_spaces


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Model):
    """Where the data comes from.

    ``tpch_scale`` generates TPC-H locally (``tpchgen-cli``) as ``samples.tpch``;
    ``attach`` maps a catalog name to a DuckDB file attached read-only;
    ``tables`` maps ``catalog.schema.table`` to a Parquet or CSV file.
    """

    tpch_scale: float | None = Field(default=0.1, gt=0, le=10)
    attach: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, str] = Field(default_factory=dict)


class LatencyConfig(_Model):
    """How long each status lasts, in seconds, before ``speed`` multiplies it.

    Each phase is drawn around its mean with a log-normal spread (``jitter`` is
    the sigma), deterministically from the emulator's seed.
    """

    phases: dict[str, float] = Field(
        default_factory=lambda: {
            "SUBMITTED": 0.2,
            "FETCHING_METADATA": 0.4,
            "FILTERING_CONTEXT": 0.5,
            "ASKING_AI": 1.6,
            "PENDING_WAREHOUSE": 0.3,
            "EXECUTING_QUERY": 0.8,
        }
    )
    jitter: float = Field(default=0.35, ge=0, le=2)
    total_seconds: float | None = Field(
        default=None, ge=0, description="scale the phases so a message takes about this long"
    )


class PrincipalConfig(_Model):
    """A user or service principal: a PAT and/or OAuth M2M client credentials."""

    token: str | None = Field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = Field(default=None, repr=False)


class LimitsConfig(_Model):
    """Per-workspace and per-space limits, as real Genie enforces them."""

    qpm: int = Field(default=5, ge=1, description="questions per window per workspace")
    rate_window_seconds: float = Field(default=60.0, gt=0)
    max_conversations_per_space: int = Field(default=10_000, ge=1)
    max_messages_per_conversation: int = Field(default=10_000, ge=1)
    max_message_length: int = Field(default=25_000, ge=1)
    max_result_rows: int = Field(default=5_000, ge=1)
    result_ttl_seconds: float = Field(default=24 * 3600.0, gt=0)
    oauth_token_lifetime_seconds: float = Field(default=3600.0, gt=0)


class EmulatorConfig(_Model):
    """The whole emulator configuration.

    Example:
        >>> cfg = EmulatorConfig.model_validate({"limits": {"qpm": 20}})
        >>> cfg.limits.qpm
        20
    """

    data: DataConfig = Field(default_factory=DataConfig)
    spaces: list[SpaceDecl] = Field(default_factory=lambda: load_spaces(default_spaces_path()))
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    principals: dict[str, PrincipalConfig] = Field(default_factory=dict)
    faults: list[Fault] = Field(default_factory=list)
    workspace_id: str = "1234567890123456"
    llm: str | None = Field(
        default=None,
        description="optional LangChain chat model writing the SQL, as 'package.module:name'",
    )

    @model_validator(mode="after")
    def _unique_space_ids(self) -> EmulatorConfig:
        ids = [s.id for s in self.spaces]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"space ids must be unique; repeated: {dupes}")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """Load a YAML configuration; relative data paths resolve against the file's folder.

        A ``spaces_file:`` key may point at a separate spaces YAML instead of an
        inline ``spaces:`` list.
        """
        path = Path(path)
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: the top level must be a mapping")
        base = path.resolve().parent
        spaces_file = raw.pop("spaces_file", None)
        if spaces_file is not None:
            raw["spaces"] = [s.model_dump() for s in load_spaces(base / spaces_file)]
        data = raw.get("data") or {}
        for key in ("attach", "tables"):
            if key in data:
                data[key] = {k: str(base / v) for k, v in data[key].items()}
        return cls.model_validate(raw)
