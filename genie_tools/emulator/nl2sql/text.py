"""Words: normalising questions and phrases so that they can be matched token by token."""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"[a-z0-9]+(?:[#\-.'][a-z0-9]+)*")
_THOUSANDS = re.compile(r"(\d),(\d{3})\b")
_KILO = re.compile(r"\b(\d+(?:\.\d+)?)k\b")
_CAME_BACK = re.compile(r"\b(?:came|come|comes|coming|sent|send|sends) back\b")
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "twenty-five": 25, "fifty": 50, "hundred": 100, "a dozen": 12, "dozen": 12,
}  # fmt: skip
MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}  # fmt: skip
# Words that say nothing about *what* is asked; a question made only of these and
# matched phrases is fully understood.
FILLER = frozenset(
    """a an the of in on at for by to from and or is are was were be been being what which who
    whom whose how show me list give tell please do does did our we i us you your my there their
    it its this that these those with per each every all any across over into than as so much
    many number count total overall sum value values amount figure figures get find see need
    want like would could can should let display report break down split broken up grouped
    group rank ranked ranking sorted sort order ordered top bottom highest lowest most least
    biggest largest smallest best worst greatest fewest more less have has had got make
    average avg mean median maximum max minimum min during within between since before after
    until through year years month months quarter quarters day days date time period
    only just also too now then instead same again what's how's about compare comparison
    versus vs respectively broken out along together split-out which one ones some""".split()
) | frozenset(
    # Ordinary words of questions about data, tolerated wherever they appear: they
    # neither name data nor change what is asked. (Nouns naming things outside the
    # space — weather, salary, password — are deliberately absent.)
    """where when while whether if else not no yes ok okay fine sure thanks thank really
    actually exactly roughly approximately around nearly almost about quite very much more
    it's that's there's we've we're i'd i'm you're they're they them their theirs his her
    he she its ours us we'll let's don't doesn't didn't isn't aren't wasn't weren't can't
    do done doing did does go going gone went come came coming comes bring brought bringing
    generate generated generates generating make makes made making earn earned bring take
    took taken taking receive received receiving buy bought buying purchase purchased sell
    sold selling place placed placing put get got gets getting give gave given see saw seen
    look looking show shown showing tell told know knew find found need needs want wanted
    like liked prefer keep kept hold held holds holding offer offers offered offering carry
    carried source sourced sourcing supply supplied provide provided use used using run ran
    reach reached record recorded recorded happen happened include included including
    includes exclude excluded excluding consider considered count counted counting list
    listed rank ranked add added plus minus combined combine overall whole entire full
    history historical ever never always still yet already currently current recent
    recently latest earliest oldest newest first last next previous prior final early late
    later earlier new old big bigger biggest small smaller smallest large larger high
    higher low lower great greater good better bad worse single individual distinct
    different unique separate separately various several many few each both either neither
    other others another something anything everything nothing someone anyone everyone
    thing things kind kinds type types sort sorts way ways part parts piece pieces case
    cases item items line lines row rows entry entries record records result results
    data dataset table tables number numbers figure total totals share shares percent
    percentage percentages proportion ratio rate rates fraction portion pct % growth grow
    grew grown change changed changes increase increased decrease decreased rise rose fall
    fell compare compared comparing against relative respect versus per cent dollars
    dollar usd money amount amounts value volume level levels based located situated
    sitting sits sit live lives living stand stands standing come from out off up down
    into onto upon under below above over beyond within without across through throughout
    inclusive included both days day date dates week weeks calendar whole-year full-year
    jan feb mar apr jun jul aug sep sept oct nov dec january february march april june
    july august september october november december spring summer autumn fall winter
    second third fourth half h1 h2 q1 q2 q3 q4 ytd yoy mom qoq book booked booking books
    send sent sending sends take takes took taking end ended ending ends reach reaches
    long longer short soon quickly fast slow slowly typical typically usually normally
    arrive arrived arrives well i.e e.g etc ie eg goods merchandise weakest strongest poorest
    quietest busiest heaviest lightest slowest fastest quickest but restrict restricted
    restricting narrow narrowed filter filtered focus limit limited moved move moves
    arriving pass passes passed combination combinations among amongst chronological
    chronologically alphabetical alphabetically lose lost losing via using spread
    breakdown sorted ordering descending ascending shown displayed onwards onward forward
    spend spends spent spending tie ties tied cost costs costing gap gaps sell sells
    earn earns earned earning pay paid paying worth pls plz thx right rather stuff
    altogether cumulative elapsed elapse elapses ones terms history base own far carry
    carries carried size sizes range express expressed switch inclusive file""".split()
)  # fmt: skip


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; keeps ``Brand#12``, ``1-URGENT``, ``0.05`` and dates whole.

    Example:
        >>> tokens("Top 5 Brand#12 parts, 1-URGENT in 1996-03-01?")
        ['top', '5', 'brand#12', 'parts', '1-urgent', 'in', '1996-03-01']
    """
    out: list[str] = []
    text = _THOUSANDS.sub(r"\1\2", text.lower().replace("’", "'"))  # 9,000 -> 9000
    text = _KILO.sub(lambda m: str(round(float(m.group(1)) * 1000)), text)  # 9k -> 9000
    text = _CAME_BACK.sub("returned", text)  # "items that came back": returned items
    for token in _TOKEN.findall(text):
        if token.endswith("'s"):
            token = token[:-2]  # Manufacturer#1's parts
        if re.fullmatch(r"[a-z]+-\d+", token):
            out.extend(token.split("-"))  # "size-50 parts"
            continue
        if "-" in token and token.replace("-", "").isalpha():
            for part in token.split("-"):  # late-delivery, high-priority: two words
                out.extend(ABBREVIATIONS.get(part, part).split())
        else:
            out.extend(ABBREVIATIONS.get(token, token).split())
    return out


# Shorthand analysts type into a chat box, spelled out before anything is matched.
ABBREVIATIONS = {
    "rev": "revenue", "revs": "revenue", "inv": "inventory", "qty": "quantity",
    "qtys": "quantities", "amt": "amount", "yr": "year", "yrs": "years", "mo": "month",
    "mos": "months", "mth": "month", "mths": "months", "qtr": "quarter", "qtrs": "quarters",
    "cust": "customer", "custs": "customers", "supp": "supplier", "supps": "suppliers",
    "num": "number", "tot": "total", "avg.": "average", "vs.": "versus", "info": "information",
    "dept": "department", "incl": "including", "inclusive": "including",
    "pct": "percent", "perc": "percent", "approx": "approximately",
}  # fmt: skip


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """A crude, predictable stem: plural and verb endings off (``shipped`` → ``ship``)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh")):
        if word.endswith(suffix):
            word = word[: -len(suffix)] + repl
            break
    else:
        if word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
    if word.endswith("e") and len(word) > 4 and not word.endswith("ee"):
        return word[:-1]  # receive / received, place / placed
    if len(word) == 5 and word.endswith("ed") and word[1] in "aeiouy" and word[2] not in "aeiou":
        return word[:-1]  # sized / size, dated / date (not owned / owne)
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            word = word[: -len(suffix)]
            if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # shipped, shipping -> ship
            break
    if word.endswith("y") and len(word) > 4:
        word = word[:-1]  # delivery, delivered -> deliver
    return word


def stems(text: str) -> tuple[str, ...]:
    """Stemmed tokens of ``text`` as a tuple (a phrase key)."""
    return tuple(stem(t) for t in tokens(text))


def split_identifier(name: str, vocabulary: set[str]) -> list[str]:
    """Split a column name into words: prefix off, underscores, then known words.

    Example:
        >>> split_identifier("p_retailprice", {"retail", "price"})
        ['retail', 'price']
    """
    parts = [p for p in name.lower().split("_") if p]
    if len(parts) > 1 and len(parts[0]) <= 2:  # TPC-H style table prefix: l_, ps_
        parts = parts[1:]
    out: list[str] = []
    for part in parts:
        out.extend(_segment(part, vocabulary) or [part])
    return out


def _segment(word: str, vocabulary: set[str]) -> list[str] | None:
    """Split ``word`` into two or more vocabulary words (each >= 3 letters), if it can be done."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 20), end - 2):
            head = best[start]
            if start == 0 and end == len(word):
                continue  # the whole word is no split
            if head is not None and word[start:end] in vocabulary:
                best[end] = [*head, word[start:end]]
                break
    return best[len(word)] if len(best[len(word)] or []) > 1 else None


def expand_abbreviation(name: str, words: list[str]) -> list[str] | None:
    """Read an abbreviated name against consecutive words of its description.

    Each piece of the name must be the start of a word followed by letters of it
    in order (``acct`` in ``account``, ``qty`` in ``quantity``).

    Example:
        >>> expand_abbreviation("acctbal", "Customer account balance in dollars".lower().split())
        ['account', 'balance']
    """
    for start in range(len(words)):
        found = _abbreviates(name, words[start : start + 4])
        if found:
            return found
    return None


def _abbreviates(name: str, words: list[str]) -> list[str] | None:
    if not name:
        return []
    if not words or not words[0] or words[0][0] != name[0]:
        return None
    word = words[0]
    # take the longest piece of ``name`` that is a subsequence of ``word``
    pos, taken = 0, 0
    for ch in name:
        found = word.find(ch, pos)
        if found < 0:
            break
        pos, taken = found + 1, taken + 1
    for size in range(taken, 1, -1):
        rest = _abbreviates(name[size:], words[1:])
        if rest is not None:
            return [word, *rest]
    return None


# How people name places as adjectives ("French suppliers", "Asian customers"): general
# English, matched against values found in the data.
DEMONYMS: dict[str, tuple[str, ...]] = {
    "AFRICA": ("african",), "AMERICA": ("american",), "ASIA": ("asian",),
    "EUROPE": ("european",), "MIDDLE EAST": ("middle eastern", "mideast"),
    "ALGERIA": ("algerian",), "ARGENTINA": ("argentine", "argentinian"),
    "AUSTRALIA": ("australian",), "AUSTRIA": ("austrian",), "BELGIUM": ("belgian",),
    "BRAZIL": ("brazilian",), "CANADA": ("canadian",), "CHINA": ("chinese",),
    "DENMARK": ("danish",), "EGYPT": ("egyptian",), "ETHIOPIA": ("ethiopian",),
    "FINLAND": ("finnish",), "FRANCE": ("french",), "GERMANY": ("german",),
    "GREECE": ("greek",), "INDIA": ("indian",), "INDONESIA": ("indonesian",),
    "IRAN": ("iranian", "persian"), "IRAQ": ("iraqi",), "IRELAND": ("irish",),
    "ITALY": ("italian",), "JAPAN": ("japanese",), "JORDAN": ("jordanian",),
    "KENYA": ("kenyan",), "MEXICO": ("mexican",), "MOROCCO": ("moroccan",),
    "MOZAMBIQUE": ("mozambican",), "NETHERLANDS": ("dutch",), "NORWAY": ("norwegian",),
    "PERU": ("peruvian",), "POLAND": ("polish",), "PORTUGAL": ("portuguese",),
    "ROMANIA": ("romanian",), "RUSSIA": ("russian",), "SAUDI ARABIA": ("saudi",),
    "SPAIN": ("spanish",), "SWEDEN": ("swedish",), "SWITZERLAND": ("swiss",),
    "TURKEY": ("turkish",), "UNITED KINGDOM": ("british", "uk", "english"),
    "UNITED STATES": ("american", "us", "usa", "u.s."), "VIETNAM": ("vietnamese",),
}  # fmt: skip


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|:\s+")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_NOT_AN_END = ("e.g.", "i.e.", "etc.", "vs.", "incl.", "approx.", "no.", "avg.", "mr.", "ms.")


def _words(text: str) -> list[str]:
    return [w for w in tokens(text) if w not in ("please", "pls", "and", "then", "also")]


_ASKING = frozenset(
    "what what's which who whose how how's when where show give list can could would tell "
    "is are was were do does did".split()
)
_INSTRUCTING = frozenset(
    "show use only just sort rank round give list exclude include limit express break split "
    "group order count restrict keep return display present".split()
)


def _sentences(text: str) -> list[str]:
    parts: list[str] = []
    for part in (p.strip() for p in _SENTENCE_END.split(text.strip())):
        if parts and parts[-1].lower().endswith(_NOT_AN_END):
            parts[-1] += " " + part  # "e.g. 0.05", "vs. 1996"
        elif part:
            parts.append(part)
    return parts


def _without_lead_clause(sentence: str) -> str | None:
    """The part that asks, after a lead-in clause ("For the scorecards, what's ...")."""
    head, comma, rest = sentence.partition(", ")
    words = _words(rest)
    if (
        comma
        and words
        and words[0] in _ASKING
        and not (_words(head)[:1] and _words(head)[0] in _ASKING)
    ):
        return rest
    return None


def _requests(sentence: str) -> bool:
    """Whether a sentence states what is wanted ("I need …", "I'd like …")."""
    words = tokens(sentence)[:3]
    return words[:2] in (["i", "need"], ["i", "want"], ["we", "need"], ["i'd", "like"]) or (
        words[:3] == ["i", "would", "like"]
    )


def question_readings(text: str) -> list[str]:
    """Ways to read ``text`` as a request, the most likely first.

    People explain why they ask ("I'm preparing the carrier review. What share of ...?");
    the explanation is not part of the query. The readings are: the asking sentences with
    the instructions after them ("Show it as a percentage."), the asking sentences alone,
    the instructions alone (after a rhetorical question), each without a lead-in clause
    ("For my review, how was ..."), and the whole text. A year the question points back
    to ("that year") is carried over from the context.

    Example:
        >>> question_readings("We ran a promotion in 1996. What was revenue that year?")[0]
        'What was revenue 1996?'
        >>> question_readings("For my review, how was revenue split by region?")
        ['For my review, how was revenue split by region?', 'how was revenue split by region?']
    """
    parts = _sentences(text)
    first_ask = next((k for k, p in enumerate(parts) if p.endswith("?")), None)
    if first_ask is not None and any(
        _requests(p) and not p.endswith("?") for p in parts[first_ask + 1 :]
    ):
        return [text]  # "Where are our TRUCK shipments? I need their GPS positions.": one ask
    asking = [p for p in parts if p.endswith("?")]
    if not asking and len(parts) > 1 and ":" in text:
        asking = [text.rsplit(":", 1)[1].strip()]
    first = parts.index(asking[0]) if asking and asking[0] in parts else len(parts)
    # "… ? Show it as a percentage.": an instruction after the question shapes it
    told = [
        p
        for p in parts[first + 1 :]
        if p not in asking and _words(p)[:1] and _words(p)[0] in _INSTRUCTING
    ]
    ordered = sorted(asking + told, key=lambda p: parts.index(p) if p in parts else len(parts))
    candidates = [" ".join(ordered), " ".join(asking), " ".join(told)] if asking else []
    out: list[str] = []
    for focus in [*candidates, text]:
        if not focus:
            continue
        context = " ".join(p for p in parts if p not in focus)
        years = set(_YEAR.findall(context))
        if len(years) == 1 and not _YEAR.search(focus):
            focus = re.sub(r"\b(?:that|the same) year\b", years.pop(), focus)
        out.append(focus)
        clause = _without_lead_clause(focus)
        if clause is not None:
            out.append(clause)
    return list(dict.fromkeys(out))
