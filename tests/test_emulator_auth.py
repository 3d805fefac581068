"""Authentication and permissions: PATs, OAuth M2M through the real SDK, space ACLs."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import assert_same_rows, space_id
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service.dashboards import MessageStatus

from genie_tools.emulator import EmulatorConfig, GenieEmulator, default_spaces_path, load_spaces

QUESTION = "What was total revenue by year?"
OTHER_QUESTION = "How many orders were placed in 1996?"
SPACES_PATH = "/api/2.0/genie/spaces"
TOKEN_PATH = "/oidc/v1/token"
WAIT = dt.timedelta(seconds=10)

MakeEmulator = Callable[..., GenieEmulator]
Reference = Callable[[str], list[tuple[Any, ...]]]


def _assert_answer_matches(
    w: WorkspaceClient, space: str, msg: Any, duckdb_reference: Reference
) -> None:
    assert msg.status == MessageStatus.COMPLETED
    query = next(a for a in msg.attachments or [] if a.query is not None)
    result = w.genie.get_message_attachment_query_result(
        space, msg.conversation_id, msg.message_id, query.attachment_id
    )
    assert_same_rows(result.statement_response, duckdb_reference(query.query.query))


# --------------------------------------------------------------------------- OAuth M2M


def test_oauth_m2m_through_the_sdk(
    make_emulator: MakeEmulator, duckdb_reference: Reference
) -> None:
    emu = make_emulator(seed=5)
    w = emu.workspace_client(oauth=True)
    assert w.config.auth_type == "oauth-m2m"

    titles = sorted(s.title for s in w.genie.list_spaces().spaces or [])
    assert titles == ["Sales & revenue", "Shipping & returns", "Supply chain"]
    space = space_id(emu)
    msg = w.genie.start_conversation_and_wait(space, QUESTION, timeout=WAIT)
    _assert_answer_matches(w, space, msg, duckdb_reference)

    stats = emu.stats()
    assert stats["token_requests"] >= 1
    assert stats["auth_failures"] == 0
    assert stats["questions"] == 1


def test_sdk_refreshes_expiring_oauth_tokens(
    make_emulator: MakeEmulator, duckdb_reference: Reference
) -> None:
    emu = make_emulator(config={"limits": {"oauth_token_lifetime_seconds": 2}}, seed=5)
    w = emu.workspace_client(oauth=True)
    space = space_id(emu)

    first = w.genie.start_conversation_and_wait(space, QUESTION, timeout=WAIT)
    _assert_answer_matches(w, space, first, duckdb_reference)
    before = emu.stats()["token_requests"]
    assert before >= 1

    time.sleep(3)  # past the token's expiry
    follow_up = w.genie.create_message_and_wait(
        space, first.conversation_id, OTHER_QUESTION, timeout=WAIT
    )
    _assert_answer_matches(w, space, follow_up, duckdb_reference)
    assert follow_up.conversation_id == first.conversation_id

    stats = emu.stats()
    assert stats["token_requests"] >= 2
    assert stats["token_requests"] > before
    assert stats["questions_by_conversation"] == {first.conversation_id: 2}


def test_manual_oauth_token_works_until_it_expires(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(config={"limits": {"oauth_token_lifetime_seconds": 2}}, seed=5)
    issued_at = time.monotonic()
    resp = httpx.post(
        f"{emu.url}{TOKEN_PATH}",
        auth=(emu.client_id, emu.client_secret),
        data={"grant_type": "client_credentials", "scope": "all-apis"},
        timeout=10,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 2
    token = body["access_token"]
    assert token not in (emu.token, emu.client_secret)

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=10) as client:
        ok = client.get(SPACES_PATH)
        assert ok.status_code == 200
        assert len(ok.json()["spaces"]) == 3

        time.sleep(max(0.0, issued_at + 2.3 - time.monotonic()))
        expired = client.get(SPACES_PATH)
        assert expired.status_code == 401
        assert expired.json()["error_code"] == "UNAUTHENTICATED"
        assert "expired" in expired.json()["message"].lower()

    stats = emu.stats()
    assert stats["token_requests"] == 1
    assert stats["auth_failures"] == 1


def test_token_endpoint_accepts_form_credentials(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=5)
    form = {
        "grant_type": "client_credentials",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
    }
    resp = httpx.post(f"{emu.url}{TOKEN_PATH}", data=form, timeout=10)
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    listed = httpx.get(
        f"{emu.url}{SPACES_PATH}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert listed.status_code == 200

    wrong_grant = httpx.post(
        f"{emu.url}{TOKEN_PATH}", data={**form, "grant_type": "password"}, timeout=10
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "invalid_grant"


def test_wrong_client_secret(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=5)
    w = WorkspaceClient(
        host=emu.url, client_id=emu.client_id, client_secret="not-the-secret", auth_type="oauth-m2m"
    )
    # The SDK turns the token endpoint's error into a ValueError on the first API call.
    with pytest.raises(ValueError, match="invalid_client"):
        w.genie.list_spaces()
    assert emu.stats()["questions"] == 0
    assert emu.stats()["token_requests"] >= 1

    for client_id, secret in [
        (emu.client_id, "not-the-secret"),
        ("unknown-client", emu.client_secret),
    ]:
        resp = httpx.post(
            f"{emu.url}{TOKEN_PATH}",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials"},
            timeout=10,
        )
        assert resp.status_code == 401
        assert resp.json()["error"] == "invalid_client"
        assert "access_token" not in resp.json()


def test_bad_bearer_tokens_are_401(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=5)
    cases: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer dapi-not-a-real-token"},
        {"Authorization": f"Basic {emu.token}"},
    ]
    for headers in cases:
        resp = httpx.get(f"{emu.url}{SPACES_PATH}", headers=headers, timeout=10)
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "UNAUTHENTICATED"
        assert "dapi-not-a-real-token" not in resp.text
        assert emu.token not in resp.text
    assert emu.stats()["auth_failures"] == 3


# --------------------------------------------------------------------------- permissions

ALICE, BOB = "alice@example.com", "bob@example.com"


def _acl_config() -> EmulatorConfig:
    spaces = {s.title: s for s in load_spaces(default_spaces_path())}
    return EmulatorConfig(
        spaces=[
            spaces["Sales & revenue"].model_copy(update={"permissions": {ALICE: "CAN_RUN"}}),
            spaces["Supply chain"].model_copy(update={"permissions": {"*": "CAN_VIEW"}}),
            spaces["Shipping & returns"].model_copy(
                update={"permissions": {"*": "CAN_RUN", ALICE: "CAN_MANAGE"}}
            ),
        ],
        principals={ALICE: {"token": "alice-pat-0001"}, BOB: {"token": "bob-pat-0002"}},
    )


def _pat_client(emu: GenieEmulator, token: str) -> WorkspaceClient:
    return WorkspaceClient(host=emu.url, token=token, auth_type="pat")


def test_space_permissions(make_emulator: MakeEmulator, duckdb_reference: Reference) -> None:
    emu = make_emulator(config=_acl_config(), seed=5)
    sales, supply = space_id(emu), space_id(emu, "Supply chain")
    shipping = space_id(emu, "Shipping & returns")
    alice, bob = _pat_client(emu, "alice-pat-0001"), _pat_client(emu, "bob-pat-0002")

    # Visibility: an invisible space is absent from the listing and 404 on get.
    assert {s.space_id for s in alice.genie.list_spaces().spaces or []} == {
        sales,
        supply,
        shipping,
    }
    assert {s.space_id for s in bob.genie.list_spaces().spaces or []} == {supply, shipping}
    with pytest.raises(NotFound):
        bob.genie.get_space(sales)
    with pytest.raises(NotFound):
        bob.genie.start_conversation(sales, QUESTION)

    # CAN_VIEW: may read the space, may not ask.
    assert bob.genie.get_space(supply).title == "Supply chain"
    with pytest.raises(PermissionDenied):
        bob.genie.start_conversation(supply, QUESTION)
    with pytest.raises(PermissionDenied):
        alice.genie.start_conversation(supply, QUESTION)

    # CAN_RUN: may ask, may not read the serialized space (needs CAN_EDIT).
    assert alice.genie.get_space(sales).serialized_space is None
    with pytest.raises(PermissionDenied):
        alice.genie.get_space(sales, include_serialized_space=True)
    msg = alice.genie.start_conversation_and_wait(sales, QUESTION, timeout=WAIT)
    _assert_answer_matches(alice, sales, msg, duckdb_reference)
    assert alice.genie.get_space(shipping, include_serialized_space=True).serialized_space
    with pytest.raises(PermissionDenied):
        bob.genie.get_space(shipping, include_serialized_space=True)

    # The default user of the emulator has no grant on Sales & revenue either.
    default = _pat_client(emu, emu.token)
    assert {s.space_id for s in default.genie.list_spaces().spaces or []} == {supply, shipping}

    stats = emu.stats()
    assert stats["questions"] == 1
    assert stats["rate_limited"] == 0


def test_conversations_are_private(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(config=_acl_config(), seed=5)
    shipping = space_id(emu, "Shipping & returns")
    alice, bob = _pat_client(emu, "alice-pat-0001"), _pat_client(emu, "bob-pat-0002")

    started = alice.genie.start_conversation(shipping, "How many line items were returned?")
    conv, mid = started.response.conversation_id, started.response.message_id
    assert alice.genie.get_message(shipping, conv, mid).message_id == mid

    with pytest.raises(PermissionDenied):
        bob.genie.get_message(shipping, conv, mid)
    with pytest.raises(PermissionDenied):
        bob.genie.create_message(shipping, conv, "And how many were not?")
    with pytest.raises(PermissionDenied):
        bob.genie.list_conversation_messages(shipping, conv)
    with pytest.raises(PermissionDenied):
        bob.genie.delete_conversation(shipping, conv)

    assert [
        c.conversation_id for c in bob.genie.list_conversations(shipping).conversations or []
    ] == []
    mine = alice.genie.list_conversations(shipping).conversations or []
    assert [c.conversation_id for c in mine] == [conv]
    assert emu.stats()["questions_by_conversation"] == {conv: 1}


# --------------------------------------------------------------------------- hygiene


def test_repr_hides_secrets(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(config=_acl_config(), seed=5)
    for text in (repr(emu), str(emu)):
        assert emu.token not in text
        assert emu.client_secret not in text
        assert "alice-pat-0001" not in text
        assert emu.url in text
    stopped = GenieEmulator(speed=0, token="dapi-secret-value-123")
    assert "dapi-secret-value-123" not in repr(stopped)
    assert stopped.client_secret not in repr(stopped)

    stats = httpx.get(
        f"{emu.url}/emulator/admin/stats",
        headers={"Authorization": f"Bearer {emu.token}"},
        timeout=10,
    )
    assert stats.status_code == 200
    assert emu.token not in stats.text
    assert emu.client_secret not in stats.text
