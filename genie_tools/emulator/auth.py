"""Who is calling: bearer tokens (PATs) and OAuth M2M client credentials.

OAuth follows what the Databricks SDK's ``oauth-m2m`` flow asks of a workspace:
``/.well-known/databricks-config`` names the OIDC root, whose discovery
document names ``/oidc/v1/token``; that endpoint swaps client credentials
(HTTP Basic or form fields) for an access token that expires.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from genie_tools.emulator.config import PrincipalConfig
from genie_tools.emulator.service import ApiError

DEFAULT_PRINCIPAL = "emulator-user@example.com"


@dataclass(frozen=True)
class IssuedToken:
    """An OAuth access token and when it stops working."""

    principal: str
    expires_at: float


class Authenticator:
    """Maps credentials to principals. Secrets never leave this object.

    Example:
        >>> auth = Authenticator({"me": PrincipalConfig(token="t0k")}, token_lifetime=60)
        >>> auth.principal_for("Bearer t0k")
        'me'
    """

    def __init__(
        self,
        principals: dict[str, PrincipalConfig],
        *,
        token_lifetime: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = {p.token: name for name, p in principals.items() if p.token}
        self._clients = {
            p.client_id: (name, p.client_secret or "")
            for name, p in principals.items()
            if p.client_id
        }
        self._admins = frozenset(name for name, p in principals.items() if p.admin)
        self._issued: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        self.token_lifetime = token_lifetime
        self.clock = clock

    def is_admin(self, principal: str) -> bool:
        """Whether ``principal`` may use the emulator's admin API (``admin: true``)."""
        return principal in self._admins

    def principal_for(self, authorization: str | None) -> str:
        """The principal behind an ``Authorization`` header, or a 401 ApiError."""
        if not authorization:
            raise ApiError(
                401, "UNAUTHENTICATED", "No credentials: send 'Authorization: Bearer <token>'."
            )
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "UNAUTHENTICATED", "Only bearer tokens are accepted.")
        static = self._tokens.get(value)
        if static is not None:
            return static
        with self._lock:
            issued = self._issued.get(value)
        if issued is None:
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
        if issued.expires_at <= self.clock():
            raise ApiError(401, "UNAUTHENTICATED", "Access token expired; request a new one.")
        return issued.principal

    def issue(self, authorization: str | None, form: dict[str, str]) -> dict[str, str | int]:
        """Answer an OAuth ``client_credentials`` token request.

        Returns:
            The token response body (``access_token``, ``token_type``, ``expires_in``).
        """
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "invalid_grant", "Only grant_type=client_credentials is supported.")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(401, "invalid_client", "Malformed basic credentials.") from exc
            client_id, _, client_secret = decoded.partition(":")
        known = self._clients.get(client_id)
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        if known is None or not secrets.compare_digest(_utf8(known[1]), _utf8(client_secret)):
            raise ApiError(401, "invalid_client", "Unknown client id or wrong secret.")
        token = "emu-oauth-" + secrets.token_urlsafe(24)
        lifetime = self.token_lifetime
        with self._lock:
            now = self.clock()
            self._issued = {k: v for k, v in self._issued.items() if v.expires_at > now}
            self._issued[token] = IssuedToken(known[0], now + lifetime)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": max(1, int(lifetime)),
            "scope": form.get("scope", "all-apis"),
        }


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate from a crafted form is still compared, never raised.
    return text.encode("utf-8", "surrogatepass")
