"""Genie space declarations: what a space holds, loaded from YAML.

A declaration carries the same things a real Genie space holds and returns as
``serialized_space``: a title and description, tables with column comments,
join keys, text instructions, named measures and dimensions, sample questions
and example question → SQL pairs.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

PermissionLevel = Literal["CAN_VIEW", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"]
PERMISSION_RANK: dict[str, int] = {"CAN_VIEW": 1, "CAN_RUN": 2, "CAN_EDIT": 3, "CAN_MANAGE": 4}
ALL_USERS = "*"


def _everyone_can_edit() -> dict[str, PermissionLevel]:
    return {ALL_USERS: "CAN_EDIT"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableDecl(_Strict):
    """A table of a space, fully qualified (``catalog.schema.table``)."""

    name: str
    description: str = ""
    columns: dict[str, str] = Field(default_factory=dict, description="column name -> comment")

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if value.count(".") != 2:
            raise ValueError(f"table {value!r} must be fully qualified as catalog.schema.table")
        return value

    @property
    def short_name(self) -> str:
        """The table name without catalog and schema."""
        return self.name.rsplit(".", 1)[1]


class JoinDecl(_Strict):
    """A declared key between two tables: ``catalog.schema.table.column`` on each side."""

    left: str
    right: str


class MeasureDecl(_Strict):
    """A named metric the space's instructions define, e.g. revenue."""

    name: str
    sql: str
    synonyms: list[str] = Field(default_factory=list)
    description: str = ""


class DimensionDecl(_Strict):
    """A column people slice by, optionally at a time grain."""

    name: str
    column: str
    grain: Literal["year", "quarter", "month", "day"] | None = None
    synonyms: list[str] = Field(default_factory=list)


class ExampleSql(_Strict):
    """An example question with the SQL that answers it (Databricks SQL)."""

    question: str
    sql: str


class SpaceDecl(_Strict):
    """One Genie space."""

    id: str
    title: str
    description: str = ""
    warehouse_id: str = "emulator-warehouse"
    parent_path: str = "/Workspace/Shared/genie"
    tables: list[TableDecl]
    joins: list[JoinDecl] = Field(default_factory=list)
    instructions: str = ""
    measures: list[MeasureDecl] = Field(default_factory=list)
    dimensions: list[DimensionDecl] = Field(default_factory=list)
    sample_questions: list[str] = Field(default_factory=list)
    example_sqls: list[ExampleSql] = Field(default_factory=list)
    permissions: dict[str, PermissionLevel] = Field(
        default_factory=_everyone_can_edit,
        description="principal (or '*' for all users) -> permission level",
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError(f"space id {value!r} must be non-empty letters, digits, '-' or '_'")
        return value

    def permission_for(self, principal: str) -> int:
        """The rank of ``principal``'s permission on this space (0 = none)."""
        level = self.permissions.get(principal) or self.permissions.get(ALL_USERS)
        return PERMISSION_RANK[level] if level else 0

    def serialized(self) -> str:
        """The space as Genie's ``serialized_space`` JSON string (version 2 layout)."""
        return json.dumps(
            {
                "version": 2,
                "config": {
                    "sample_questions": [
                        {"id": _stable_id(self.id, "q", q), "question": [q]}
                        for q in self.sample_questions
                    ]
                },
                "data_sources": {
                    "tables": [
                        {
                            "identifier": t.name,
                            "description": [t.description] if t.description else [],
                            "column_configs": [
                                {"column_name": c, "description": [comment]}
                                for c, comment in t.columns.items()
                            ],
                        }
                        for t in self.tables
                    ]
                },
                "instructions": {
                    "text_instructions": (
                        [{"id": _stable_id(self.id, "i"), "content": [self.instructions]}]
                        if self.instructions
                        else []
                    ),
                    "example_question_sqls": [
                        {
                            "id": _stable_id(self.id, "e", e.question),
                            "question": [e.question],
                            "sql": [e.sql],
                        }
                        for e in self.example_sqls
                    ],
                    "join_specs": [
                        {"left": {"identifier": j.left}, "right": {"identifier": j.right}}
                        for j in self.joins
                    ],
                    "sql_snippets": {
                        "measures": [
                            {"alias": m.name, "sql": [m.sql], "synonyms": m.synonyms}
                            for m in self.measures
                        ]
                    },
                },
            }
        )


class SpacesFile(_Strict):
    """The top level of a spaces YAML file."""

    spaces: list[SpaceDecl]


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def load_spaces(path: str | Path) -> list[SpaceDecl]:
    """Load space declarations from a YAML file.

    Args:
        path: A YAML file with a top-level ``spaces:`` list.

    Returns:
        The declarations, validated.

    Example:
        >>> spaces = load_spaces(default_spaces_path())
        >>> [s.title for s in spaces][0]
        'Sales & revenue'
    """
    data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return SpacesFile.model_validate(data).spaces


def default_spaces_path() -> Path:
    """The bundled TPC-H spaces (Sales & revenue, Supply chain, Shipping & returns)."""
    return Path(str(resources.files("genie_tools.emulator").joinpath("spaces/tpch.yaml")))
