"""Authentication through the SDK only: PAT, OAuth M2M with expiring tokens, profiles,
the default chain; typed auth / permission errors; no secret in any repr, error or log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import space_id
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from test_client_harness import FAST, OTHER_QUESTION, QUESTION, Harness, make_client, mode

from genie_tools import (
    AuthenticationError,
    ConfigurationError,
    GenieClient,
    GenieSettings,
    NotFoundError,
    PermissionDeniedError,
)
from genie_tools.emulator import EmulatorConfig, GenieEmulator
from genie_tools.emulator.spaces import default_spaces_path, load_spaces

__all__ = ["make_client", "mode"]

MakeClient = Callable[..., Harness]
MakeEmulator = Callable[..., GenieEmulator]
START = "/api/2.0/genie/spaces/{space_id}/start-conversation"
ALICE, BOB = "alice@example.com", "bob@example.com"
ALICE_TOKEN, BOB_TOKEN = "alice-pat-0001-secret", "bob-pat-0002-secret"


def test_oauth_m2m_token_expiring_mid_conversation(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(config={"limits": {"oauth_token_lifetime_seconds": 2}}, seed=5, qpm=100)
    genie = make_client(emu, space_id=space_id(emu), workspace=emu.workspace_client(oauth=True))
    first = genie.ask(QUESTION)
    before = emu.stats()["token_requests"]
    assert before >= 1

    time.sleep(2.5)  # the token the first answer used has expired
    follow_up = genie.ask(OTHER_QUESTION, conversation_id=first.conversation_id)

    stats = emu.stats()
    assert follow_up.conversation_id == first.conversation_id
    assert follow_up.result is not None
    assert follow_up.result.rows[0][0] > 0
    assert stats["token_requests"] > before
    assert stats["auth_failures"] == 0  # fresh headers on every request: never a 401
    assert stats["questions_by_conversation"] == {first.conversation_id: 2}


def test_wrong_token_is_an_authentication_error_without_the_token(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(seed=5, qpm=100)
    wrong = WorkspaceClient(host=emu.url, token="dapi-wrong-token-123456", auth_type="pat")
    genie = make_client(emu, space_id=space_id(emu), workspace=wrong)
    with pytest.raises(AuthenticationError) as err:
        genie.ask(QUESTION)
    text = str(err.value)
    assert err.value.status_code == 401
    assert "credentials" in text
    assert "dapi-wrong-token-123456" not in text
    assert "dapi-wrong-token-123456" not in repr(err.value)
    assert emu.stats()["requests"][START] == 2  # one retry with fresh credentials, then stop
    assert emu.stats()["questions"] == 0


def test_wrong_client_secret_fails_at_the_token_exchange(
    make_client: MakeClient, make_emulator: MakeEmulator
) -> None:
    emu = make_emulator(seed=5, qpm=100)
    secret = "not-the-secret-but-still-secret"
    wrong = WorkspaceClient(
        host=emu.url, client_id=emu.client_id, client_secret=secret, auth_type="oauth-m2m"
    )
    genie = make_client(emu, space_id=space_id(emu), workspace=wrong)
    with pytest.raises(AuthenticationError) as err:
        genie.ask(QUESTION)
    assert "invalid_client" in str(err.value)
    assert secret not in str(err.value)
    assert err.value.__cause__ is None  # the SDK's exception (and its context) is not chained
    assert emu.stats()["questions"] == 0


def _acl_config() -> EmulatorConfig:
    spaces = {s.title: s for s in load_spaces(default_spaces_path())}
    return EmulatorConfig(
        spaces=[
            spaces["Sales & revenue"].model_copy(update={"permissions": {ALICE: "CAN_RUN"}}),
            spaces["Supply chain"].model_copy(update={"permissions": {"*": "CAN_VIEW"}}),
            spaces["Shipping & returns"].model_copy(update={"permissions": {"*": "CAN_RUN"}}),
        ],
        principals={ALICE: {"token": ALICE_TOKEN}, BOB: {"token": BOB_TOKEN}},
    )


def test_permissions_are_typed_errors(make_client: MakeClient, make_emulator: MakeEmulator) -> None:
    emu = make_emulator(config=_acl_config(), seed=5, qpm=100)
    sales, supply = space_id(emu), space_id(emu, "Supply chain")
    alice = make_client(emu, workspace=WorkspaceClient(host=emu.url, token=ALICE_TOKEN))
    bob = make_client(emu, workspace=WorkspaceClient(host=emu.url, token=BOB_TOKEN))

    with pytest.raises(PermissionDeniedError) as denied:
        bob.ask(QUESTION, space_id=supply)  # CAN_VIEW may not ask
    assert "CAN RUN" in str(denied.value)
    assert denied.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(NotFoundError):
        bob.ask(QUESTION, space_id=sales)  # invisible
    assert [s.title for s in bob.list_spaces()] == ["Supply chain", "Shipping & returns"]

    # CAN_RUN answers but may not read serialized_space: get_space falls back to the basics.
    info = alice.get_space(sales)
    assert info.title == "Sales & revenue"
    assert info.detailed is False
    assert info.tables == []
    answer = alice.ask(QUESTION, space_id=sales)
    assert answer.result is not None
    with pytest.raises(PermissionDeniedError):
        bob.wait(answer.ref)  # someone else's conversation
    assert emu.stats()["questions"] == 1


def test_secrets_stay_out_of_reprs_errors_and_logs(
    make_emulator: MakeEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(seed=5, qpm=100)
    caplog.set_level(logging.DEBUG)
    oauth = emu.workspace_client(oauth=True)
    with GenieClient(oauth, space_id=space_id(emu), settings=GenieSettings(**FAST)) as genie:
        answer = genie.ask(QUESTION)
        emu.inject(kind="http_error", status=503, count=1, path=r"/messages/[0-9a-f]+$")
        genie.wait(answer.ref)
        texts = [repr(genie), str(genie), repr(answer), answer.model_dump_json()]
    bad = WorkspaceClient(host=emu.url, token="dapi-leaky-token-000111", auth_type="pat")
    with (
        GenieClient(bad, space_id=space_id(emu)) as leaky,
        pytest.raises(AuthenticationError) as err,
    ):
        leaky.list_spaces()
    texts += [str(err.value), repr(err.value), repr(leaky)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("GET /api/2.0/genie" in r.getMessage() for r in caplog.records)  # logs exist
    access_token = oauth.config.authenticate()["Authorization"].split()[1]
    for secret in (emu.token, emu.client_secret, "dapi-leaky-token-000111", access_token):
        for text in texts:
            assert secret not in text


def test_constructors_do_no_network_and_profiles_resolve_lazily(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator(seed=5, qpm=100)
    cfg = Path(tmp_path / "databrickscfg")
    cfg.write_text(f"[emu]\nhost = {emu.url}\ntoken = {emu.token}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    before = sum(emu.stats()["requests"].values())

    by_profile = GenieClient("emu", space_id=space_id(emu), settings=GenieSettings(**FAST))
    missing = GenieClient("no-such-profile", space_id=space_id(emu))
    monkeypatch.setenv("DATABRICKS_TOKEN", emu.token)
    by_env = GenieClient(settings=GenieSettings(**FAST, host=emu.url), space_id=space_id(emu))
    assert sum(emu.stats()["requests"].values()) == before  # nothing sent yet
    assert "not resolved" in repr(by_profile)

    assert len(by_profile.list_spaces()) == 3
    assert emu.url in repr(by_profile)
    assert len(by_env.list_spaces()) == 3
    with pytest.raises(ConfigurationError, match="no-such-profile"):
        missing.list_spaces()
    for client in (by_profile, missing, by_env):
        client.close()


def test_plain_http_is_refused_unless_loopback(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(seed=5, qpm=100)
    config = Config(host=emu.url, token=emu.token, auth_type="pat")
    GenieClient(config).close()  # loopback: fine
    config.host = "http://genie.example.com"
    with pytest.raises(ConfigurationError, match="https"):
        GenieClient(config)
    with pytest.raises(ValueError, match="https"):
        GenieSettings(host="http://10.1.2.3:8080")
    with pytest.raises(ConfigurationError):
        GenieClient(42)  # type: ignore[arg-type]
