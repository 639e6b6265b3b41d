"""Seller authorization: the OAuth 2 code flow that yields the TOP ``session`` (§1.7).

The shop owner is sent to ``authorize_url(...)``; Taobao redirects back with ``code`` and
``state``; :meth:`TaobaoOAuth.exchange_code` turns the code into tokens and
:meth:`TaobaoOAuth.refresh` renews them before ``expires_in`` runs out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    TemporaryFailure,
)

OAUTH_BASE = "https://oauth.taobao.com"
SANDBOX_OAUTH_BASE = "https://oauth.tbsandbox.com"


def authorize_url(
    app_key: str, redirect_uri: str, state: str, base: str = OAUTH_BASE, view: str = "web"
) -> str:
    """Where to send the shop owner to authorize the app (``view=wap`` on a phone)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app_key,
            "redirect_uri": redirect_uri,
            "state": state,
            "view": view,
        }
    )
    return f"{base.rstrip('/')}/authorize?{query}"


@dataclass(frozen=True)
class OAuthToken:
    """The token endpoint's answer; ``access_token`` is the TOP ``session``."""

    access_token: str
    refresh_token: str
    expires_in: int
    re_expires_in: int
    taobao_user_id: str
    taobao_user_nick: str
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        # The tokens are credentials: keep them out of logs and tracebacks.
        nick, expires = self.taobao_user_nick, self.expires_in
        return f"OAuthToken(taobao_user_nick={nick!r}, expires_in={expires})"

    @classmethod
    def from_answer(cls, body: Mapping[str, Any]) -> OAuthToken:
        try:
            return cls(
                access_token=str(body["access_token"]),
                refresh_token=str(body.get("refresh_token") or ""),
                expires_in=int(body.get("expires_in") or 0),
                re_expires_in=int(body.get("re_expires_in") or 0),
                taobao_user_id=str(body.get("taobao_user_id") or ""),
                # The nick is reported URL-encoded by some gateways [3P]; decoding is harmless.
                taobao_user_nick=unquote(str(body.get("taobao_user_nick") or "")),
                token_type=str(body.get("token_type") or "Bearer"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TemporaryFailure("taobao token answer lacks access_token") from exc


class TaobaoOAuth:
    """The token endpoint for one app: ``TaobaoOAuth(app_key, app_secret, base=...)``."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        base: str = OAUTH_BASE,
        timeout: float = 15.0,
        http: requests.Session | None = None,
    ) -> None:
        self.app_key = app_key
        self._app_secret = app_secret
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.http = http or requests.Session()

    def __repr__(self) -> str:
        return f"TaobaoOAuth({self.app_key!r}, base={self.base!r})"

    def authorize_url(self, redirect_uri: str, state: str, view: str = "web") -> str:
        return authorize_url(self.app_key, redirect_uri, state, self.base, view)

    def exchange_code(self, code: str, redirect_uri: str) -> OAuthToken:
        """The tokens for the ``code`` the redirect brought back (one use only)."""
        return self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )

    def refresh(self, refresh_token: str) -> OAuthToken:
        """New tokens from a refresh token, before ``re_expires_in`` runs out."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, form: dict[str, str]) -> OAuthToken:
        form = {**form, "client_id": self.app_key, "client_secret": self._app_secret}
        grant = form["grant_type"]
        try:
            response = self.http.post(f"{self.base}/token", data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TemporaryFailure(f"taobao token ({grant}): {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise TemporaryFailure(f"taobao token ({grant}): HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"taobao token ({grant}): answer is not JSON") from exc
        if not isinstance(body, dict):
            raise TemporaryFailure(f"taobao token ({grant}): answer is not a JSON object")
        if response.status_code >= 400 or "error" in body:
            error = str(body.get("error") or f"HTTP {response.status_code}")
            text = f"taobao token ({grant}): {error} {body.get('error_description', '')}"
            # A used, expired or revoked grant means the owner must authorize again.
            if error == "invalid_grant":
                raise AuthExpired(text.strip())
            raise PermanentFailure(text.strip())
        return OAuthToken.from_answer(body)


__all__ = ["OAUTH_BASE", "SANDBOX_OAUTH_BASE", "OAuthToken", "TaobaoOAuth", "authorize_url"]
