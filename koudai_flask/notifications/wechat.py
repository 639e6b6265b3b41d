"""The WeChat Official Account API client: the shared ``access_token`` and template messages.

PROTOCOLS §3.2–§3.3. The ``access_token`` is one per appid for the whole shop: every fetch
of a classic ``/cgi-bin/token`` invalidates the previous one (after a 5-minute overlap), and
a forced ``/cgi-bin/stable_token`` is limited to 20 a day. So it is kept in one place, the
``CredentialCache`` table, that every web process and worker reads; it is refreshed 300 s
before it expires, under a row lock, so that many processes refreshing at once make one
call and the others take its result.

Every answer is HTTP 200 with a JSON ``errcode``; the codes map to typed errors:
40001 / 40014 / 42001 (token invalid or expired) → refresh once and retry once, then
``AuthExpired``; 45009 (frequency limit) → ``RateLimited``; -1 (system busy) and network
failures → ``TemporaryFailure``; anything else → ``PermanentFailure``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import Engine, insert, select, update

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.errors import ConfigError
from koudai_flask.models import CredentialCache
from koudai_flask.models.base import upsert_dialect, utcnow

log = logging.getLogger("koudai_flask.notifications")

DEFAULT_API_URL = "https://api.weixin.qq.com"
# §3.2: "invalid credential", "invalid access_token", "access_token expired".
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
RATE_LIMITED = 45009
SYSTEM_BUSY = -1
# Refresh this long before WeChat's expiry (§3.2 recommends 60–300 s).
REFRESH_MARGIN = 300
BEIJING = ZoneInfo("Asia/Shanghai")

# Fetches a token: ``fetch(force_refresh) -> (access_token, expires_in)``.
TokenFetcher = Callable[[bool], tuple[str, int]]


class TokenStore(Protocol):
    """Where the shared token lives; :class:`CredentialCacheStore` is the database one."""

    def current(self, name: str) -> str | None:
        """The stored token if it has not expired, else None."""

    def refresh(self, name: str, fetch: TokenFetcher, *, stale: str | None) -> str:
        """A fresh token: fetched unless another process already replaced ``stale``."""


class CredentialCacheStore:
    """Tokens in ``koudai_credential_cache``, on their own short transactions.

    Its own connection, not the ORM session, so that committing a token never commits, or
    rolls back, the caller's unit of work.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def current(self, name: str) -> str | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(CredentialCache.value, CredentialCache.expires_at).where(
                    CredentialCache.name == name
                )
            ).first()
        if row is None or not row.value or row.expires_at <= utcnow():
            return None
        return str(row.value)

    def refresh(self, name: str, fetch: TokenFetcher, *, stale: str | None) -> str:
        with self.engine.begin() as connection:
            _insert_placeholder(connection, name)
            # The row lock makes concurrent refreshes queue here (SQLite has no FOR UPDATE
            # but the placeholder insert already took its single write lock).
            row = connection.execute(
                select(CredentialCache.value, CredentialCache.expires_at)
                .where(CredentialCache.name == name)
                .with_for_update()
            ).one()
            fresh = row.value and row.expires_at > utcnow()
            if fresh and row.value != stale:
                return str(row.value)  # someone refreshed while we waited for the lock
            value, expires_in = fetch(stale is not None)
            margin = min(REFRESH_MARGIN, expires_in // 2)
            connection.execute(
                update(CredentialCache)
                .where(CredentialCache.name == name)
                .values(
                    value=value,
                    expires_at=utcnow() + timedelta(seconds=expires_in - margin),
                    updated_at=utcnow(),
                )
            )
            return value


def _insert_placeholder(connection: Any, name: str) -> None:
    """Make sure the row exists (an expired, empty one), so it can be locked."""
    values = {
        "name": name,
        "value": "",
        "expires_at": datetime(1970, 1, 1, tzinfo=UTC),
        "updated_at": utcnow(),
    }
    module = upsert_dialect(connection)
    if module is not None:
        connection.execute(module.insert(CredentialCache).values(**values).on_conflict_do_nothing())
    elif (
        connection.execute(select(CredentialCache.id).where(CredentialCache.name == name)).first()
        is None
    ):
        connection.execute(insert(CredentialCache).values(**values))


@dataclass(frozen=True)
class WechatSettings:
    appid: str
    secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    # False: the classic GET /cgi-bin/token instead of POST /cgi-bin/stable_token.
    stable_token: bool = True
    timeout: float = 10.0

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> WechatSettings:
        if not settings.get("appid") or not settings.get("secret"):
            raise ConfigError("KOUDAI_WECHAT needs 'appid' and 'secret' to send messages")
        return cls(
            appid=str(settings["appid"]),
            secret=str(settings["secret"]),
            api_url=str(settings.get("api_url") or DEFAULT_API_URL).rstrip("/"),
            stable_token=bool(settings.get("stable_token", True)),
            timeout=float(settings.get("timeout", 10.0)),
        )


class WechatClient:
    """Calls the Official Account API for one appid (an *adapter*: the wire and no more)."""

    def __init__(
        self,
        settings: WechatSettings,
        store: TokenStore,
        *,
        http: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http or requests.Session()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WechatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def token_name(self) -> str:
        return f"wechat:{self.settings.appid}:access_token"

    # -- access_token ------------------------------------------------------------------------

    def access_token(self, *, stale: str | None = None) -> str:
        """The shared token; with ``stale``, a new one unless someone replaced it already."""
        if stale is None:
            token = self.store.current(self.token_name)
            if token is not None:
                return token
        return self.store.refresh(self.token_name, self._fetch_token, stale=stale)

    def _fetch_token(self, force_refresh: bool) -> tuple[str, int]:
        s = self.settings
        path = "/cgi-bin/stable_token" if s.stable_token else "/cgi-bin/token"
        if s.stable_token:
            # §3.2: force_refresh only when the token we hold was refused (20 a day).
            answer = self._request(
                "POST",
                path,
                json={
                    "grant_type": "client_credential",
                    "appid": s.appid,
                    "secret": s.secret,
                    "force_refresh": force_refresh,
                },
            )
        else:
            answer = self._request(
                "GET",
                path,
                params={"grant_type": "client_credential", "appid": s.appid, "secret": s.secret},
            )
        self._raise_for(answer, path)
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise TemporaryFailure("WeChat token answer without access_token/expires_in")
        log.info("wechat: new access_token for %s (expires in %d s)", s.appid, expires_in)
        return token, expires_in

    # -- calls -------------------------------------------------------------------------------

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to an API that takes ``?access_token=``; return the answer or raise."""
        token = self.access_token()
        answer = self._request("POST", path, params={"access_token": token}, json=body)
        if answer.get("errcode") in TOKEN_ERRORS:
            # §3.2: the token was invalidated early (a refresh elsewhere, a reset in the
            # back end): refresh once and retry once, never in a loop.
            log.info("wechat: %s refused the token (%s); refreshing", path, answer["errcode"])
            token = self.access_token(stale=token)
            answer = self._request("POST", path, params={"access_token": token}, json=body)
        self._raise_for(answer, path)
        return answer

    def send_template(
        self,
        openid: str,
        template_id: str,
        data: Mapping[str, Any],
        url: str | None = None,
        client_msg_id: str | None = None,
    ) -> str:
        """Send a template message (§3.3); returns WeChat's ``msgid``.

        ``data`` maps each field to its text (or to ``{"value": text}``). ``client_msg_id``
        makes WeChat send one message per openid and id within 10 minutes, so a retry after
        a lost answer does not reach the buyer twice.
        """
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {
                key: dict(value) if isinstance(value, Mapping) else {"value": str(value)}
                for key, value in data.items()
            },
        }
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        answer = self.call("/cgi-bin/message/template/send", body)
        msgid = answer.get("msgid")
        if msgid is None:
            raise TemporaryFailure("WeChat accepted the message but returned no msgid")
        return str(msgid)

    # -- wire --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self.http.request(
                method,
                self.settings.api_url + path,
                params=params,
                json=json,
                timeout=self.settings.timeout,
            )
        except requests.RequestException as exc:
            # Never pass requests' message on: it quotes the URL, access_token included.
            raise TemporaryFailure(f"WeChat {path} unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise TemporaryFailure(f"WeChat {path} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise TemporaryFailure(f"WeChat {path} answered non-JSON") from None
        if not isinstance(answer, dict):
            raise TemporaryFailure(f"WeChat {path} answered {type(answer).__name__}, not object")
        return answer

    def _raise_for(self, answer: Mapping[str, Any], path: str) -> None:
        code = answer.get("errcode", 0)
        if code in (0, None):
            return
        reason = f"WeChat {path} errcode {code}: {str(answer.get('errmsg', ''))[:200]}"
        if code in TOKEN_ERRORS:
            raise AuthExpired(reason)
        if code == RATE_LIMITED:
            raise RateLimited(reason, retry_after=seconds_until_quota_reset())
        if code == SYSTEM_BUSY:
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)


def seconds_until_quota_reset(now: datetime | None = None) -> float:
    """WeChat's daily API quotas (45009) start again at midnight, Beijing time."""
    local = (now or utcnow()).astimezone(BEIJING)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=BEIJING)
    return (midnight - local).total_seconds()


def client_from_config(settings: Mapping[str, Any], engine: Engine) -> WechatClient:
    """A client for ``KOUDAI_WECHAT`` whose token is shared through the database."""
    return WechatClient(WechatSettings.from_config(settings), CredentialCacheStore(engine))
