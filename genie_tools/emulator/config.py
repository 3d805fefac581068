"""The emulator's configuration: data, spaces, limits, latency, auth and faults.

Everything is optional: ``EmulatorConfig()`` is three TPC-H spaces, one user
with a bearer token, 5 questions per minute and a latency of a few seconds. A
YAML file (``genie-tools emulator --config FILE``) overrides any part, and may
declare a user's own spaces over their own DuckDB, Parquet or CSV files.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from genie_tools.emulator.faults import Fault
from genie_tools.emulator.spaces import SpaceDecl, SpacesFile, default_spaces_path, load_spaces


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where, what, and how to fix it."""

    key: str
    problem: str
    fix: str


class ConfigError(ValueError):
    """A configuration the emulator cannot start with, said once: file, key, problem, fix.

    Args:
        problem: What is wrong (one problem; see :meth:`of` for several).
        key: The configuration key at fault, e.g. ``data.tables.main.shop.orders``.
        fix: What to change.
        file: The configuration file, when there is one.

    Example:
        >>> print(ConfigError("must be at least 1", key="limits.qpm", fix="give 1 or more"))
        limits.qpm: must be at least 1 (fix: give 1 or more)
    """

    def __init__(self, problem: str, *, key: str, fix: str, file: str | Path | None = None) -> None:
        self.problems = [Problem(key, problem, fix)]
        self.file = str(file) if file is not None else None
        super().__init__(self._text())

    @classmethod
    def of(cls, problems: list[Problem], file: str | Path | None = None) -> ConfigError:
        """One error for several problems (in the order given)."""
        first = problems[0]
        err = cls(first.problem, key=first.key, fix=first.fix, file=file)
        err.problems = list(problems)
        err.args = (err._text(),)
        return err

    def in_file(self, file: str | Path | None) -> ConfigError:
        """The same error, naming ``file`` (unless it already names one)."""
        if file is None or self.file is not None:
            return self
        return ConfigError.of(self.problems, file)

    def _text(self) -> str:
        lines = [f"{p.key}: {p.problem} (fix: {p.fix})" for p in self.problems]
        where = f"{self.file}: " if self.file else ""
        if len(lines) == 1:
            return where + lines[0]
        head = f"{where}{len(lines)} problems in the emulator configuration:"
        return "\n".join([head] + [f"  - {line}" for line in lines])

    def __str__(self) -> str:
        return self._text()


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
    admin: bool = Field(
        default=False,
        description="may use the emulator's admin API (/emulator/admin/: faults, stats, events)",
    )


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
    state_dir: str | None = Field(
        default=None,
        description="folder keeping conversations, messages and results across restarts",
    )
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The YAML file this configuration was read from (None when built in code)."""
        return self._source

    @model_validator(mode="after")
    def _unique_space_ids(self) -> EmulatorConfig:
        ids = [s.id for s in self.spaces]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"space ids must be unique; repeated: {dupes}")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """Load a YAML configuration; relative paths resolve against the file's folder.

        A ``spaces_file:`` key may point at a separate spaces YAML instead of an
        inline ``spaces:`` list.

        Raises:
            ConfigError: The file is missing, is not YAML, or does not validate: one
                message naming the file, each key at fault and its fix.
        """
        path = Path(path)
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(
                _first_line(exc), key="(file)", fix="give a readable YAML file", file=path
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(
                "the top level must be a mapping",
                key="(top level)",
                fix="start with keys such as data:, spaces:, limits:",
                file=path,
            )
        base = path.resolve().parent
        spaces_file = raw.pop("spaces_file", None)
        if spaces_file is not None:
            raw["spaces"] = _spaces_from(base / str(spaces_file), path)
        data = raw.get("data") or {}
        for key in ("attach", "tables"):
            if isinstance(data, dict) and isinstance(data.get(key), dict):
                data[key] = {k: str(base / str(v)) for k, v in data[key].items()}
        if isinstance(raw.get("state_dir"), str):
            raw["state_dir"] = str(base / raw["state_dir"])
        cfg = cls.validated(raw, file=path)
        cfg._source = path
        return cfg

    @classmethod
    def validated(cls, raw: Any, *, file: str | Path | None = None) -> EmulatorConfig:
        """``model_validate``, with a :class:`ConfigError` naming each key and its fix.

        Example:
            >>> EmulatorConfig.validated({"limits": {"qpm": 0}})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            genie_tools.emulator.config.ConfigError: limits.qpm: ...
        """
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise config_error(exc, cls, file) from None


def _spaces_from(spaces_path: Path, config_path: Path) -> list[dict[str, Any]]:
    try:
        return [s.model_dump() for s in load_spaces(spaces_path)]
    except ValidationError as exc:
        raise config_error(exc, SpacesFile, spaces_path) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            _first_line(exc),
            key="spaces_file",
            fix="point it at a readable YAML file with a top-level spaces: list",
            file=config_path,
        ) from None


def config_error(
    exc: ValidationError, model: type[BaseModel], file: str | Path | None = None
) -> ConfigError:
    """Pydantic's validation errors as one :class:`ConfigError` (key, problem, fix each)."""
    problems = []
    for e in exc.errors():
        key = _key(e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        problems.append(Problem(key, message, _fix(e, model)))
    return ConfigError.of(problems, file)


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fix(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, error["loc"][:-1])
        known = f": one of {', '.join(sorted(parent.model_fields))}" if parent else ""
        return f"remove it or correct its spelling{known}"
    if kind == "missing":
        return "add it"
    bounds = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
    ctx = error.get("ctx") or {}
    limits = [f"{word} {ctx[k]}" for k, word in bounds.items() if k in ctx]
    if limits:
        return f"give a number {' and '.join(limits)}"
    if kind == "literal_error":
        return f"use {error.get('ctx', {}).get('expected', 'an allowed value')}"
    if kind.endswith(("_type", "_parsing")):
        return f"give a value of the right type ({kind.split('_')[0]})"
    return "change the value as the message says"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model a configuration key lives in (for the keys it allows)."""
    current: Any = model
    skip = False  # the next part is a list index or a mapping key
    for part in loc:
        if skip:
            skip = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        skip = typing.get_origin(field.annotation) in (list, dict)
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """``list[X]``, ``dict[str, X]``, ``X | None`` -> ``X`` when X is a model."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return annotation


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
