"""Hypothesis strategies for hostile input: odd text, crafted ids, JSON, declarations, HTTP.

Each strategy mixes plausible values (real ids, sample questions, valid declarations)
with hostile ones (path traversal, surrogates, control characters, wrong types, NaN,
deep nesting), so that examples reach deep into the code as well as its edges.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

__all__ = [
    "CRAFTED_IDS",
    "any_value",
    "declarations",
    "http_requests",
    "ids",
    "json_values",
    "odd_text",
    "optional",
    "timeouts",
]

# Ids that try to leave Genie's API, or that only look like ids.
CRAFTED_IDS = [
    "../../../2.0/preview/scim/v2/Users?",
    "../../../../2.0/clusters/delete?",
    "../../../../../2.0/preview/scim/v2/Users?x&",
    "..",
    ".",
    "",
    " ",
    "a/b",
    "a?b=c",
    "a#frag",
    "%2e%2e%2f%2e%2e",
    "a%2Fb",
    "x" * 129,
    "01ef\n",
    "-leading",
    "_leading",
    "ａｂｃ１２３",  # full-width letters and digits
    "١٢٣",  # Arabic-Indic digits: str.isdigit() says yes, Genie says no
    "\u0131d",  # dotless i
    "id\u200b",  # zero-width space
    "\ud800",
    "http://169.254.169.254/latest/meta-data",
    "//evil.example/x",
]
SURROGATES = ["\ud800", "\udfff", "\udc80", "\udbff\udbff"]
ODD = ["\x00", "\x07", "\x1b[31m", "\r\n", "\u202e", "\ufeff", "\u2028", "🙂", "Ω", "\t"]
SECRET_BAIT = ["{token}", "%(token)s", "{0}", "${DATABRICKS_TOKEN}"]


def odd_text(max_size: int = 40, *, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Text that mixes ordinary words with control characters, bidi marks and surrogates."""
    pieces = [st.text(max_size=max_size), st.sampled_from(ODD + SECRET_BAIT)]
    if surrogates:
        pieces.append(st.sampled_from(SURROGATES))
    return st.lists(st.one_of(*pieces), max_size=4).map("".join)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``None`` or a value of ``strategy``."""
    return st.one_of(st.none(), strategy)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``bad``: inputs get past the first check and
    reach deeper code, while every check still meets hostile values."""
    # hypothesis leans to small numbers (and shrinks towards 0): 0 is the plausible side
    return st.integers(0, 3).flatmap(lambda n: bad if n == 3 else good)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text(),
)
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
any_value = st.one_of(scalars, st.binary(max_size=8), json_values)
json_scalars_and_values = st.one_of(scalars, json_values)  # what json.dumps can write


def ids(real: list[str]) -> st.SearchStrategy[Any]:
    """Mostly real ids; else well-formed unknown ids, crafted ids, odd text, wrong types."""
    hostile = st.one_of(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}", fullmatch=True),
        st.sampled_from(CRAFTED_IDS),
        odd_text(20),
        any_value,
    )
    return mostly(st.sampled_from(real), hostile)


timeouts = mostly(
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=20), st.integers(1, 30)),
    st.one_of(
        st.sampled_from([0, -1, 1e-9, float("nan"), float("inf"), -float("inf"), 1e300, 10**30]),
        st.integers(min_value=-5, max_value=0),
        st.sampled_from(["10", "", True, [], {}]),
    ),
)

# ----------------------------------------------------------------- space declarations
TPCH = {
    "samples.tpch.orders": ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"],
    "samples.tpch.customer": ["c_custkey", "c_name", "c_nationkey", "c_mktsegment"],
    "samples.tpch.nation": ["n_nationkey", "n_name", "n_regionkey"],
}
COLUMNS = [c for cols in TPCH.values() for c in cols]
TABLE_NAMES = [
    *TPCH,
    "samples.tpch.nope",
    "main.default.orders",
    "orders",
    "a.b.c.d",
    "samples..orders",
    "",
    "samples.tpch.orders; DROP TABLE x",
    "read_csv('/etc/passwd')",
]
SQL = [
    "SELECT o_orderdate, SUM(o_totalprice) FROM samples.tpch.orders GROUP BY 1",
    "SELECT COUNT(*) FROM samples.tpch.customer",
    "SELECT * FROM samples.tpch.nope",
    "SELECT * FROM read_csv('/etc/passwd')",
    "INSTALL httpfs",
    "ATTACH '/tmp/x.db' AS x",
    "DROP TABLE samples.tpch.orders",
    "SELECT 1; SELECT 2",
    "SELEC broken",
    "SUM(o_totalprice)",
    "COUNT(DISTINCT o_custkey)",
    "SUM(nope)",
    "",
]


@st.composite
def _table(draw: Any) -> dict[str, Any]:
    text = odd_text(30, surrogates=False)
    name = draw(mostly(st.sampled_from(list(TPCH)), st.sampled_from(TABLE_NAMES)))
    own = TPCH.get(name, COLUMNS)
    column = mostly(st.sampled_from(own), st.one_of(st.sampled_from(COLUMNS), text))
    table: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        table["description"] = draw(text)
    if draw(st.integers(0, 3)):
        table["columns"] = draw(st.dictionaries(column, text, max_size=4))
    return table


def _ref() -> st.SearchStrategy[str]:
    good = st.sampled_from([f"{t}.{c}" for t, cols in TPCH.items() for c in cols])
    return mostly(good, st.one_of(st.sampled_from(COLUMNS), odd_text(20, surrogates=False)))


def _space(index: int) -> st.SearchStrategy[dict[str, Any]]:
    text = odd_text(30, surrogates=False)
    words = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30)
    plain = mostly(words, text)
    sql = mostly(st.sampled_from(SQL[:2]), st.one_of(st.sampled_from(SQL), text))
    measure_sql = mostly(st.sampled_from(SQL[9:11]), st.one_of(st.sampled_from(SQL), text))
    return st.fixed_dictionaries(
        {
            "id": mostly(
                st.just(f"fuzzspace{index}"), st.one_of(st.sampled_from(CRAFTED_IDS), text)
            ),
            "title": mostly(st.just(f"Fuzz space {index}"), text),
            "tables": st.lists(_table(), min_size=1, max_size=3),
        },
        optional={
            "description": plain,
            "joins": st.lists(st.fixed_dictionaries({"left": _ref(), "right": _ref()}), max_size=2),
            "instructions": plain,
            "measures": st.lists(
                st.fixed_dictionaries(
                    {"name": plain, "sql": measure_sql},
                    optional={"synonyms": st.lists(plain, max_size=2)},
                ),
                max_size=2,
            ),
            "dimensions": st.lists(
                st.fixed_dictionaries(
                    {"name": plain, "column": _ref()},
                    optional={
                        "grain": mostly(
                            st.sampled_from(["year", "month", None]), st.sampled_from(["week", 3])
                        )
                    },
                ),
                max_size=2,
            ),
            "sample_questions": st.lists(plain, max_size=2),
            "example_sqls": st.lists(
                st.fixed_dictionaries({"question": plain, "sql": sql}), max_size=2
            ),
            "permissions": st.dictionaries(
                words,
                st.sampled_from(["CAN_VIEW", "CAN_RUN", "CAN_MANAGE", "OWNER", 1]),
                max_size=2,
            ),
        },
    )


def _config() -> st.SearchStrategy[Any]:
    spaces = st.lists(st.integers(0, 2).flatmap(_space), max_size=2)
    limits = st.dictionaries(
        st.sampled_from(["qpm", "rate_window_seconds", "max_result_rows", "nope"]),
        st.one_of(st.integers(-2, 50), st.floats(allow_nan=True), st.text(max_size=5)),
        max_size=2,
    )
    return st.fixed_dictionaries(
        {"spaces": mostly(spaces, any_value)},
        optional={
            "limits": mostly(limits, any_value),
            "workspace_id": mostly(st.from_regex(r"[0-9]{16}", fullmatch=True), any_value),
            "principals": st.dictionaries(
                st.text(max_size=8),
                st.fixed_dictionaries({}, optional={"token": odd_text(12, surrogates=False)}),
                max_size=1,
            ),
        },
    ).flatmap(
        lambda c: mostly(
            st.just(c),
            st.sampled_from(["nope.yaml", "/etc/passwd", "../x.yaml", ""]).map(
                lambda f: {**c, "spaces_file": f}
            ),
        )
    )


def declarations() -> st.SearchStrategy[tuple[str, Any]]:
    """``("yaml", text)`` of a configuration built from a dict, or arbitrary text."""
    import yaml

    as_yaml = _config().map(lambda c: ("yaml", yaml.safe_dump(c, allow_unicode=True)))
    raw = st.one_of(
        st.text(max_size=200),
        st.sampled_from(["spaces: [", "spaces: 3", "- a\n- b", "!!python/object:os.system x", "{"]),
    ).map(lambda t: ("yaml", t))
    return st.one_of(as_yaml, as_yaml, raw)


# ----------------------------------------------------------------- the emulator's HTTP API
G = "/api/2.0/genie/spaces"
C = G + "/{space}/conversations/{conversation}"
M = C + "/messages/{message}"
A = M + "/attachments/{attachment}"
S = "/api/2.0/sql/statements"
ROUTES = [
    ("GET", G),
    ("GET", G + "/{space}"),
    ("POST", G + "/{space}/start-conversation"),
    ("GET", G + "/{space}/conversations"),
    ("DELETE", C),
    ("GET", C + "/messages"),
    ("POST", C + "/messages"),
    ("GET", M),
    ("DELETE", M),
    ("POST", M + "/feedback"),
    ("GET", M + "/query-result"),
    ("GET", M + "/query-result/{attachment}"),
    ("POST", M + "/execute-query"),
    ("GET", A + "/query-result"),
    ("POST", A + "/execute-query"),
    ("POST", A + "/downloads"),
    ("GET", A + "/downloads/{download}"),
    ("GET", "/emulator/download/{download}/{chunk}"),
    ("POST", "/emulator/admin/faults"),
    ("DELETE", "/emulator/admin/faults"),
    ("GET", "/emulator/admin/stats"),
    ("GET", "/emulator/admin/events"),
    ("POST", S),
    ("GET", S + "/{statement}"),
    ("GET", S + "/{statement}/result/chunks/{chunk}"),
    ("POST", S + "/{statement}/cancel"),
    ("GET", "/emulator/download/statements/{statement}/{chunk}"),
    ("GET", "/.well-known/databricks-config"),
    ("GET", "/oidc/.well-known/oauth-authorization-server"),
    ("POST", "/oidc/v1/token"),
]
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "PROPFIND"]


def _segment(real: list[str]) -> st.SearchStrategy[str]:
    crafted = st.sampled_from(CRAFTED_IDS).map(
        lambda v: quote(v.encode("utf-8", "surrogatepass"), safe="")
    )
    texty = odd_text(12, surrogates=False).map(lambda v: quote(v, safe=""))
    number = st.integers(-3, 10**20).map(str)
    return mostly(st.sampled_from(real), st.one_of(crafted, texty, number))


@st.composite
def _path(draw: Any, real: dict[str, list[str]]) -> tuple[str, str, str]:
    """``(method, route, path)``: a route with fuzzed segments (its method, mostly), or any."""
    if draw(st.integers(0, 4)) == 4:  # anywhere at all
        path = "/" + draw(st.text(alphabet=string.printable.strip(), max_size=40))
        return draw(st.sampled_from(METHODS)), "(any)", path
    method, route = draw(st.sampled_from(ROUTES))
    method = draw(mostly(st.just(method), st.sampled_from(METHODS)))
    path = route
    for key in ("space", "conversation", "message", "attachment", "statement"):
        path = path.replace("{" + key + "}", draw(_segment(real[key])))
    for key in ("download", "chunk"):
        path = path.replace("{" + key + "}", draw(_segment(["0", "1", "abc"])))
    return method, route, path


def _body(real: dict[str, list[str]]) -> st.SearchStrategy[bytes | None]:
    structured = st.fixed_dictionaries(
        {},
        optional={
            "content": odd_text(60, surrogates=False),
            "statement": st.one_of(st.sampled_from(SQL), st.text(max_size=40)),
            "warehouse_id": st.one_of(st.just("emulator-warehouse"), st.text(max_size=10)),
            "wait_timeout": st.sampled_from(["0s", "5s", "50s", "51s", "-1s", "abc", 5]),
            "disposition": st.sampled_from(["INLINE", "EXTERNAL_LINKS", "nope", 1]),
            "format": st.sampled_from(["JSON_ARRAY", "CSV", "ARROW_STREAM", "x"]),
            "row_limit": json_scalars_and_values,
            "parameters": json_scalars_and_values,
            "rating": st.sampled_from(["POSITIVE", "NEGATIVE", "NONE", "nope", 1]),
            "kind": st.sampled_from(["http_error", "slow", "connection_reset", "stuck", "x"]),
            "status": st.integers(100, 700),
            "count": st.integers(-1, 3),
        },
    ).map(lambda d: json.dumps(d).encode())
    nested = st.integers(1, 200_000).map(lambda n: ("[" * n + "]" * n).encode())
    return st.one_of(
        st.none(),
        structured,
        structured,
        json_values.map(lambda v: json.dumps(v).encode()),
        nested,
        st.binary(max_size=64),
        odd_text(40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"{", b"null", b"[]", b'{"content": 1}', b"\xff\xfe{}"]),
    )


def _token_form() -> st.SearchStrategy[bytes]:
    value = st.one_of(
        st.sampled_from(["emulator-m2m-client", "client_credentials", "all-apis", ""]),
        odd_text(16, surrogates=False),
    )
    form = st.dictionaries(
        st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "x"]),
        value,
        max_size=4,
    )
    return form.map(lambda f: "&".join(f"{quote(k)}={quote(v)}" for k, v in f.items()).encode())


def http_requests(
    real: dict[str, list[str]], token: str, user_token: str
) -> st.SearchStrategy[dict[str, Any]]:
    """``{"method", "route", "path", "query", "headers", "body"}`` for raw requests.

    ``token`` is the admin's (most requests), ``user_token`` an ordinary user's.
    """
    latin = st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=30,
    )
    auth = mostly(
        st.just(f"Bearer {token}"),
        st.one_of(
            st.just(f"Bearer {user_token}"),
            st.sampled_from(["Bearer wrong", "Bearer ", "Basic Og==", "Basic ", "bearer " + token]),
            latin,
        ),
    )
    ctype = st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin-1",
            "",
        ]
    )
    headers = st.fixed_dictionaries(
        {"Authorization": auth}, optional={"Content-Type": ctype, "Accept": latin, "X-Fuzz": latin}
    ).flatmap(
        lambda h: mostly(st.just(h), st.just({k: v for k, v in h.items() if k != "Authorization"}))
    )
    # as bytes: httpx would refuse non-ASCII text, and servers must cope with Latin-1 bytes
    headers = headers.map(lambda h: {k: v.encode("latin-1") for k, v in h.items()})
    return st.builds(
        lambda where, query, headers, body: {
            "method": where[0],
            "route": where[1],
            "path": where[2],
            "query": query,
            "headers": headers,
            "body": body,
        },
        _path(real),
        st.one_of(st.just(""), st.text(alphabet=string.printable.strip(), max_size=20)),
        headers,
        st.one_of(_body(real), _token_form()),
    )
