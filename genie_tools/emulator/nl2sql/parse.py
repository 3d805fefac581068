"""From a question (and the conversation so far) to an :class:`Intent`, or a reason to ask back.

The question is read token by token: first the patterns every analytics
question shares (years, quarters, months, dates, numbers, "top 10", "more than",
"average"), then the space's own phrases — measures, dimensions, table names,
column names and values found in the data — longest first. Each piece then
takes its role from the words around it ("how many customers" counts them, "top
10 customers" ranks them). Words that are neither understood nor filler make the
engine ask instead of guess.
"""

from __future__ import annotations

import re

from genie_tools.emulator.nl2sql.followup import FollowUpReading
from genie_tools.emulator.nl2sql.intent import (
    Intent,
    normalise_grains,
)
from genie_tools.emulator.nl2sql.reading import (
    Piece,
    Unanswerable,
)
from genie_tools.emulator.nl2sql.roles import RoleReading
from genie_tools.emulator.nl2sql.schema import (
    Measure,
    SpaceSchema,
    ValueRef,
)
from genie_tools.emulator.nl2sql.text import (
    DEMONYMS,
    FILLER,
    question_readings,
    stem,
    stems,
    tokens,
)

__all__ = ["QuestionParser", "Unanswerable"]

UNSAFE = frozenset(
    "delete drop truncate insert update alter grant revoke merge create replace remove "
    "modify overwrite vacuum optimize attach detach copy pragma".split()
)
# Requests to act rather than to read: refused wherever they stand in the sentence.
IMPERATIVES = frozenset("set mark cancel refund change edit fix reset assign approve".split())
# Verbs that change data when they open a request ("increase every supplier's cost by
# 10%"), though as nouns they are questions ("the increase in revenue").
LEADING_WRITES = frozenset(
    "increase decrease raise lower reduce double halve bump rename "
    "discount adjust apply archive restore".split()
)


_MOVES = frozenset("switch move transfer convert reassign".split())
_VIEW_CHANGES = frozenset("to it that this back over".split())

# English words that are also values in some data ("NONE" as a shipping instruction)
_COMMON_WORDS = frozenset("none nothing other any no yes".split())

_CHAT = frozenset(
    "hey hi hello thanks please quick quickly deck slide slides board meeting boss team "
    "report email work working curious wondering guess basically kind honestly review "
    "ship ships cover covers travel travels flip side scorecard scorecards trend trends "
    "zoom footprint".split()
)


# Words after which a value's spelling is a verb: "how many did we ship".
_SUBJECTS = frozenset("we they you i".split())


def _conversational(word: str) -> bool:
    """Words that colour a question without naming data: adverbs, participles, chat."""
    return word in _CHAT or word.endswith(("ly", "ed", "ing")) or "'" in word  # they've


class QuestionParser:
    """Parses questions for one space.

    Example:
        >>> parser = QuestionParser(schema)  # doctest: +SKIP
        >>> parser.parse("top 5 nations by revenue in 1996", previous=None)  # doctest: +SKIP
    """

    def __init__(self, schema: SpaceSchema) -> None:
        self.schema = schema
        self.phrases: dict[tuple[str, ...], list[tuple[str, object]]] = {}
        self._entity_words = {w for t in schema.tables.values() for p in t.words for w in p}
        for m in schema.measures:
            for p in m.phrases:
                self._add(p, "measure", m)
                if len(p) >= 3 and p[0] in {stem(w) for w in ("average", "avg", "total", "mean")}:
                    self._add(p[1:], "measure", m)
        table_words = {w for t in schema.tables.values() for p in t.words for w in p}
        for m in schema.measures:
            name = m.phrases[0]
            # "order totals" or "total including tax" for "order total including tax",
            # but not "line items" for "returned line items": that names a table
            for size in range(len(name) - 1, 1, -1):
                for start in range(len(name) - size + 1):
                    part = name[start : start + size]
                    if part not in self.phrases and not set(part) <= table_words:
                        self._add(part, "measure", m)
        for d in schema.dimensions:
            for p in d.phrases:
                self._add(p, "dimension", d)
        for t in schema.tables.values():
            for p in t.words:
                self._add(p, "entity", t)
        categories = {id(r.column) for refs in schema.values.values() for r in refs}
        for cols in schema.columns.values():
            for c in cols:
                if {"key", "comment"} & set(c.words):
                    continue
                if (
                    c.kind in ("number", "date")
                    or len(c.words) > 1
                    or id(c) in categories
                    or c is not schema.tables[c.table].label  # "clerks": o_clerk
                ):
                    self._add(tuple(stem(w) for w in c.words), "column", c)
        # "balance" for the account balance, "cost" for the supply cost: the last word of a
        # column's name, when no other column of the space ends with it
        heads: dict[str, list[object]] = {}
        for cols in schema.columns.values():
            for c in cols:
                if c.kind == "number" and len(c.words) > 1 and "key" not in c.words:
                    heads.setdefault(stem(c.words[-1]), []).append(c)
        self._add_sole_names("column", heads)
        # "by mode" for the ship mode, "total units" for the units on hand: a word only one
        # dimension (or measure) is named with; not a table's or a date's word
        dated = {w for d in schema.dimensions if d.grain for p in d.phrases for w in p}
        dated |= {stem(w) for c in schema.date_columns for w in c.words}
        for kind, things in (
            ("dimension", [d for d in schema.dimensions if d.grain is None]),
            ("measure", schema.measures),
        ):
            words: dict[str, list[object]] = {}
            for thing in things:
                for w in dict.fromkeys(w for p in thing.phrases for w in p):
                    if len(w) > 3 and w not in self._entity_words and w not in dated:
                        words.setdefault(w, []).append(thing)
            self._add_sole_names(kind, words)
        for key, rule in schema.rules.items():
            self._add(key, "rule", rule)
        for key, refs in schema.values.items():
            for ref in refs:
                self._add(key, "value", ref)
                if ref.rank == 0:
                    for adjective in DEMONYMS.get(ref.value.upper(), ()):
                        # "French suppliers" are in FRANCE; matched in any spelling
                        self._add(
                            stems(adjective), "value", ValueRef(ref.column, ref.value, rank=1)
                        )
        self.max_len = max((len(p) for p in self.phrases), default=1)
        # "tax-inclusive order total": a long measure name with its words in another order
        self.shuffled: dict[tuple[str, ...], list[Measure]] = {}
        for m in schema.measures:
            for p in m.phrases:
                if len(p) >= 3 and len(set(p)) == len(p):
                    self.shuffled.setdefault(tuple(sorted(p)), []).append(m)
        self.vocabulary = {stem(w) for w in schema._vocabulary(schema.space)}

    def _add_sole_names(self, kind: str, owners: dict[str, list[object]]) -> None:
        """Let each word that names exactly one thing of ``kind`` name it on its own."""
        for word, things in owners.items():
            if len(things) == 1 and (word,) not in self.phrases and word not in FILLER:
                self._add((word,), kind, things[0])

    def _add(self, phrase: tuple[str, ...], kind: str, payload: object) -> None:
        if phrase:
            self.phrases.setdefault(phrase, []).append((kind, payload))
        if (
            len(phrase) == 2
            and kind in ("measure", "dimension")
            and phrase[::-1] not in self.phrases
            and phrase[0] not in self._entity_words
        ):
            # "units available" is "available units", but "priority orders" are orders
            # of a priority, not the order priority
            self.phrases[phrase[::-1]] = [(kind, payload)]

    # ------------------------------------------------------------------
    def parse(self, question: str, previous: Intent | None) -> Intent:
        """The intent of ``question``; a follow-up modifies ``previous``.

        Raises:
            Unanswerable: when the question writes, or cannot be mapped confidently.
        """
        refusal: Unanswerable | None = None
        for reading in question_readings(question):
            try:
                return _Reading(self, reading, previous).intent()
            except Unanswerable as exc:
                # the reason given is the one for the question as asked
                refusal = exc if reading == question or refusal is None else refusal
        assert refusal is not None
        raise refusal


class _Reading(RoleReading, FollowUpReading):
    """One question being read: patterns, phrases, roles, then follow-up merging."""

    # steps -----------------------------------------------------------
    def _idioms(self) -> None:
        """Mark words that are part of set phrases, not names of data ("account for")."""
        for i in range(len(self.raw) - 1):
            if self.raw[i] == "account" and self.raw[i + 1] == "for":
                self._take(i, i + 2)
            for idiom in (["in", "the", "red"], ["in", "debt"], ["below", "zero"], ["overdrawn"]):
                if self.raw[i : i + len(idiom)] == idiom:
                    self._take(i, i + len(idiom))
                    self.in_the_red = True
            # "net of discounts", "after discount": how a figure is defined, not a figure
            for idiom in (["net", "of", "discount"], ["net", "of", "discounts"]):
                if self.raw[i : i + len(idiom)] == idiom:
                    self._take(i, i + len(idiom))
            # "at least one order": whose rows to count, not a figure, group or limit
            if self.raw[i : i + 2] == ["at", "least"] and self.raw[i + 2 : i + 3] in (
                ["one"],
                ["1"],
                ["a"],
                ["an"],
            ):
                self._take(i, i + 3)
                self.exists_at = i + 3

    def intent(self) -> Intent:
        opening = [w for w in self.raw[:3] if w not in ("please", "can", "could", "you", "now")]
        writes = bool(opening) and opening[0] in LEADING_WRITES
        # "switch all pending TRUCK shipments to AIR" moves data; "switch to Brand#5" the view
        writes = writes or (
            len(opening) > 1 and opening[0] in _MOVES and opening[1] not in _VIEW_CHANGES
        )
        if UNSAFE & set(self.raw) or IMPERATIVES & set(self.raw) or writes or ";" in self.question:
            raise Unanswerable("I can only read data, not change it.")
        if not self.raw:
            raise Unanswerable("The question is empty.")
        self._idioms()
        self._long_measures()
        self._phrases(min_size=2)  # "average order value" before "average"
        self._patterns()
        self._gapped_measures()
        self._phrases(min_size=1)
        self._codes_after_names()
        fresh = self._build()
        self._check_coverage(fresh)
        if self.previous is not None and self._is_follow_up(fresh):
            merged = self._merge(self.previous, fresh)
            normalise_grains(merged)
            return merged
        if not fresh.metrics and not fresh.listing:
            raise Unanswerable("I could not tell which figure you want.")
        if (
            fresh.weak
            and not self.count_at
            and not (fresh.groups or fresh.filters or fresh.limit or self.aggs)
            and not (self.superlatives or self.raw[0] == "when")
        ):
            # "how are our suppliers doing?": a subject, but nothing asked of it
            raise Unanswerable("I could not tell what you want to know about them.")
        return fresh

    def _phrases(self, min_size: int) -> None:
        i, n = 0, len(self.st)
        while i < n:
            if self.used[i]:
                i += 1
                continue
            for size in range(min(self.p.max_len, n - i), min_size - 1, -1):
                span = tuple(self.st[i : i + size])
                if any(self.used[i : i + size]) or span not in self.p.phrases:
                    continue
                if size > 1 and self._typed_value_inside(i, size):
                    continue  # "the SHIP mode": the value SHIP, not the ship mode
                if size > 2 and self._takes_dimension_head(i, size):
                    continue
                options = [
                    (k, o)
                    for k, o in self.p.phrases[span]
                    if not (
                        k == "value" and isinstance(o, ValueRef) and not self._spelled(o, i, size)
                    )
                ]
                if not options:
                    continue
                kinds = {k for k, _ in options}
                kind = next(
                    k
                    for k in ("rule", "value", "measure", "dimension", "entity", "column")
                    if k in kinds
                )
                if (
                    kind == "value"
                    and size == 1
                    and (self.raw[i] in FILLER or self.raw[i] in _COMMON_WORDS)
                    and self.raw[i] not in self.capitals
                    and len(kinds) == 1
                    and not self._beside_value(i, options)
                    and not self._filtered_before(options)
                ):
                    continue  # "top", "all", "none" are words, not values (NONE is one)
                if (
                    kind == "value"
                    and size == 1
                    and self.raw[i] not in self.capitals
                    and i > 0
                    and (
                        self.raw[i - 1] in _SUBJECTS
                        or (i == len(self.raw) - 1 and self._names_rows(i - 1))
                    )
                ):
                    continue  # "did we ship by rail", "… do urgent orders ship": a verb
                self.pieces.append(Piece(i, i + size, kind, [o for k, o in options]))
                for k, o in options:
                    if k != kind:
                        self.pieces[-1].options.append((k, o))
                self._take(i, i + size)
                i += size
                break
            else:
                i += 1

    def _long_measures(self) -> None:
        """Measures named in three words or more, wherever they stand, before shorter phrases.

        Reading left to right would let "total order" take the words of "total order value
        including tax", whose longer name says more.
        """
        n = len(self.st)
        for size in range(min(self.p.max_len, n), 2, -1):
            for i in range(n - size + 1):
                span = tuple(self.st[i : i + size])
                options = self.p.phrases.get(span, [])
                if any(self.used[i : i + size]) or any(k != "measure" for k, _ in options):
                    continue
                measures = [o for _, o in options] or list(
                    self.p.shuffled.get(tuple(sorted(span)), [])
                )
                if self._takes_dimension_head(i, size):
                    continue  # "revenue per order priority": revenue by the order priority
                if measures:
                    self.pieces.append(Piece(i, i + size, "measure", measures))
                    self._take(i, i + size)

    def _typed_value_inside(self, i: int, size: int) -> bool:
        """Whether a longer phrase holds a word typed in capitals that is a value on its own."""
        if any(k == "value" for k, _ in self.p.phrases[tuple(self.st[i : i + size])]):
            return False
        return any(
            self.raw[k] in self.capitals
            and any(kind == "value" for kind, _ in self.p.phrases.get((self.st[k],), []))
            for k in range(i, i + size)
        )

    def _codes_after_names(self) -> None:
        """A one-letter code typed after its column's name: "orders with status F"."""
        for piece in list(self.pieces):
            at = piece.end
            if piece.kind != "dimension" or at >= len(self.raw) or self.used[at]:
                continue
            code = self.raw[at]
            if len(code) != 1 or code not in self.capitals:
                continue
            for option in piece.options:
                dim = option[1] if isinstance(option, tuple) else option
                column = getattr(dim, "column", None)
                if column is not None and code.upper() in self.schema.distinct.get(id(column), []):
                    self.pieces.append(Piece(at, at + 1, "value", [ValueRef(column, code.upper())]))
                    self._take(at, at + 1)
                    break

    def _takes_dimension_head(self, i: int, size: int) -> bool:
        """Whether a phrase's last word starts a dimension with the next word.

        "revenue per order priority" is revenue by order priority, not "revenue per order".
        """
        tail = tuple(self.st[i + size - 1 : i + size + 1])
        return len(tail) == 2 and any(k == "dimension" for k, _ in self.p.phrases.get(tail, []))

    def _names_rows(self, i: int) -> bool:
        """Whether the word at ``i`` is a plural table name ("do high-priority orders ship")."""
        return self.raw[i].endswith("s") and any(
            k == "entity" for k, _ in self.p.phrases.get((self.st[i],), [])
        )

    def _filtered_before(self, options: list[tuple[str, object]]) -> bool:
        """Whether the previous question filtered a column this word is a part of a value of.

        After "brass parts", "only the large ones" means LARGE parts.
        """
        if self.previous is None:
            return False
        columns = {id(o.column) for _, o in options if isinstance(o, ValueRef) and o.op == "LIKE"}
        return any(id(f.column) in columns and f.op == "LIKE" for f in self.previous.filters)

    def _beside_value(self, i: int, options: list[tuple[str, object]]) -> bool:
        """Whether an ordinary word stands next to a value of its column ("LARGE POLISHED").

        Or before the name of its column's table: "large parts" are LARGE ones.
        """
        columns = {id(o.column) for _, o in options if isinstance(o, ValueRef)}
        tables = {o.column.table for _, o in options if isinstance(o, ValueRef)}
        if i + 1 < len(self.st) and any(
            kind == "entity" and getattr(o, "name", None) in tables
            for kind, o in self.p.phrases.get((self.st[i + 1],), [])
        ):
            return True
        for j in (i - 1, i + 1):
            if 0 <= j < len(self.st) and len(self.raw[j]) >= 3:
                for kind, o in self.p.phrases.get((self.st[j],), []):
                    if (
                        kind == "value"
                        and isinstance(o, ValueRef)
                        and id(o.column) in columns
                        and self._spelled(o, j, 1)
                    ):
                        return True
        return False

    def _gapped_measures(self) -> None:
        """Two-word measures said apart or reversed: "deliveries were late" (late deliveries)."""
        n = len(self.st)
        for i in range(n):
            for j in range(i + 2, min(n, i + 4)):
                if (
                    self.used[i]
                    or self.used[j]
                    or any(not self._filler(k) for k in range(i + 1, j))
                    # "how many orders did customers place": two subjects, not one figure
                    or any(
                        self.raw[k] in ("did", "do", "does")
                        and self.raw[k + 1] not in ("we", "you", "they", "i")
                        for k in range(i + 1, j)
                    )
                ):
                    continue
                for pair in ((self.st[i], self.st[j]), (self.st[j], self.st[i])):
                    measures = [o for k, o in self.p.phrases.get(pair, []) if k == "measure"]
                    if measures:
                        self.pieces.append(Piece(i, j + 1, "measure", list(measures)))
                        self.used[i] = self.used[j] = True
                        break

    def _filler(self, k: int) -> bool:
        return not self.used[k] and self.raw[k] in FILLER

    def _spelled(self, ref: ValueRef, i: int, size: int) -> bool:
        """Whether the question spells a value as the data does.

        "shipped" is not SHIP and "packed" is not PACK, but a plural is fine; meanings read
        from comments ("returned") match in any form.
        """
        if ref.rank == 1:
            return True
        said = self.raw[i : i + size]
        if ref.rank == 0:
            spelled = tuple(tokens(ref.value))
            if (
                len(spelled) == 1
                and len(said) == 1
                and said[0] in (spelled[0] + "n", spelled[0] + "an")
            ):
                return True  # "african" customers are in AFRICA
            if (
                len(spelled) == 1
                and len(said) == 1
                and said[0] == spelled[0] + "s"
                and re.search(rf"\b{re.escape(said[0])}\b", self.question, re.I)
                and not re.search(rf"\b{re.escape(said[0])}\b", self.question)
            ):
                return True  # "the Americas" (a name, capitalised): AMERICA
            return spelled == tuple(said)
        return said[-1] in (ref.word, ref.word + "s", ref.word + "es")

    def _known(self, word: str) -> bool:
        """Whether the space's own text uses the word, or its root ("placement": place)."""
        vocabulary = self.p.vocabulary
        if stem(word) in vocabulary or word in vocabulary:
            return True
        for suffix in ("ment", "ments", "ation", "ations", "al"):
            root = word[: -len(suffix)]
            if (
                word.endswith(suffix)
                and len(root) >= 4
                and (stem(root) in vocabulary or stem(root + "e") in vocabulary)
            ):
                return True
        return False

    def _check_coverage(self, fresh: Intent) -> None:
        """Refuse to guess when the question uses words that name nothing in this space.

        A question with a clear figure may carry a few conversational words ("hey",
        "geographically", "concentrated"), but never an unknown thing: "the fuel cost
        of deliveries" or "a poem about revenue" get a clarification.
        """
        unknown = [
            w
            for w, s, used in zip(self.raw, self.st, self.used, strict=True)
            if not used and w not in FILLER and not w.isdigit() and len(w) > 1
        ]
        outside = [w for w in unknown if not self._known(w)]
        soft = all(_conversational(w) for w in outside) and len(outside) <= 3
        understood = (
            (fresh.metrics and not fresh.weak)
            or self.previous is not None
            or (bool(fresh.metrics) and bool(self.count_at))  # "how many of our parts ship …"
        )
        if outside and not (soft and understood):
            words = ", ".join(repr(w) for w in outside[:3])
            raise Unanswerable(f"I don't know what {words} refers to in this space.")
