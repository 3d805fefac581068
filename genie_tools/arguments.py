"""What callers pass, checked before anything is sent: refs, questions, timeouts, batches.

Arguments reach the client from programs, models and users alike; each is checked once
here, so that a wrong type, a lone surrogate or a ``nan`` timeout is a typed error that
says what to pass instead, never a ``TypeError`` from deep inside the transport.

Example:
    >>> clean_question("  revenue by year? ")
    'revenue by year?'
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from genie_tools.errors import BadRequestError, ConfigurationError
from genie_tools.ids import check_id, check_optional_id
from genie_tools.models import GenieAnswer, MessageRef

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "check_batch",
    "check_ref",
    "check_timeout",
    "clean_question",
    "clean_text",
    "validation_problems",
]


def check_ref(ref: object) -> MessageRef:
    """``ref`` as a :class:`MessageRef` whose ids are all Genie ids, else a typed error.

    Raises:
        InvalidIdError: An id is malformed (it says which).
        BadRequestError: ``ref`` is not a ``MessageRef`` or ``GenieAnswer``.

    Example:
        >>> check_ref(MessageRef(space_id="s", conversation_id="c", message_id="m")).message_id
        'm'
    """
    if not isinstance(ref, MessageRef | GenieAnswer):
        raise BadRequestError(
            f"Expected a MessageRef or a GenieAnswer, not {type(ref).__name__}; pass what "
            "submit() or ask() returned."
        )
    # Checked before building the ref: a GenieAnswer's ids are not validated on their own.
    check_id(ref.space_id, kind="space")
    check_id(ref.conversation_id, kind="conversation")
    check_id(ref.message_id, kind="message")
    check_optional_id(ref.attachment_id, kind="attachment")
    return ref.ref if isinstance(ref, GenieAnswer) else ref


# Control characters (C0, DEL, C1) other than tab and newline: invisible, and NUL or
# escape sequences in a question only confuse Genie, logs and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(value: object, *, what: str = "question") -> str:
    r"""Text safe to send: a string, valid Unicode, without control characters.

    Carriage returns become newlines and other control characters other than tab and
    newline are removed. A lone surrogate (e.g. ``"\ud800"``, what a broken decoder
    leaves) cannot be encoded as UTF-8, so it is refused rather than guessed at.

    Args:
        value: The text as received (from a caller, a model or a user).
        what: What the text is, named in errors.

    Returns:
        The cleaned text, surrounding whitespace removed (possibly empty).

    Raises:
        BadRequestError: ``value`` is not a string, or holds a lone surrogate.

    Example:
        >>> clean_text("revenue\x00 by year\r\n")
        'revenue by year'
    """
    if not isinstance(value, str):
        raise BadRequestError(
            f"The {what} must be a string, not {type(value).__name__}; pass the text itself."
        )
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise BadRequestError(
            f"The {what} is not valid Unicode text: it holds a lone surrogate "
            f"(U+{ord(bad.group()):04X} at position {bad.start()}); send it as valid UTF-8."
        )
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", value).strip()


def clean_question(question: object) -> str:
    """The question cleaned (:func:`clean_text`); an empty one is refused locally.

    Example:
        >>> clean_question("  revenue by year? ")
        'revenue by year?'
    """
    text = clean_text(question, what="question")
    if not text:
        raise BadRequestError("The question is empty; ask something.")
    return text


def check_timeout(value: object, *, what: str = "timeout") -> float:
    """A timeout in seconds: a finite number > 0.

    ``nan`` compares false with everything, so without this check it would mean "never
    time out"; ``inf`` is refused too (a deadline must end): pass a long finite wait.

    Raises:
        ConfigurationError: Not a number, not finite, or not positive.

    Example:
        >>> check_timeout(20)
        20.0
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{what} must be a finite number of seconds greater than 0, not {value!r} "
            "(for a long wait pass e.g. 3600)."
        )
    return float(value)


def check_batch(questions: object, concurrency: object) -> list[str]:
    """The arguments of ``ask_many``, checked the same way for both clients.

    Raises:
        BadRequestError: ``questions`` is not a list (or tuple) of strings, or
            ``concurrency`` is not a whole number of at least 1.

    Example:
        >>> check_batch(("Revenue by year",), 4)
        ['Revenue by year']
    """
    if isinstance(questions, str) or not isinstance(questions, list | tuple):
        raise BadRequestError(
            f"questions must be a list of strings, not {type(questions).__name__}"
        )
    wrong = [type(q).__name__ for q in questions if not isinstance(q, str)]
    if wrong:
        raise BadRequestError(f"questions must be strings; got {', '.join(sorted(set(wrong)))}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise BadRequestError(
            f"concurrency must be a whole number of at least 1, not {concurrency!r}"
        )
    return list(questions)


def validation_problems(exc: ValidationError, *, whole: str = "value") -> str:
    """What pydantic refused, one ``field: why`` per problem, never the values.

    The values may be a model's tool arguments, graph input or credentials: only their
    place and the reason are said.

    Args:
        exc: The validation error.
        whole: The name for a problem with the whole input rather than one field.

    Example:
        >>> from pydantic import BaseModel, ValidationError
        >>> class Args(BaseModel):
        ...     n: int
        >>> try:
        ...     Args(n="many")
        ... except ValidationError as exc:
        ...     validation_problems(exc)
        'n: Input should be a valid integer, unable to parse string as an integer'
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )
