"""A small Weibo open API client: mentions, comments and the commercial keyword search.

Calls are ``GET <api_url>/2/<resource>.json?access_token=...`` (PROTOCOLS §7). Every list
endpoint takes ``since_id`` (only newer ids), ``count`` and ``page`` and answers newest
first. Errors are JSON ``{"error", "error_code", "request"}`` and map to typed errors:
token errors (21327 expired, 21332 invalid, 21314–21319, 21501) → ``AuthExpired``; the
rate limits (10022 per IP, 10023 / 10024 per user, counted per hour) → ``RateLimited``
until the next hour; 10001 / 10003 / 10009 and HTTP 5xx → ``TemporaryFailure``; anything
else → ``PermanentFailure``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from koudai_flask.models.base import utcnow

TOKEN_ERRORS = frozenset({21314, 21315, 21316, 21317, 21318, 21319, 21327, 21332, 21501})
RATE_LIMITS = frozenset({10022, 10023, 10024})
TEMPORARY = frozenset({10001, 10003, 10009})
CREATED_AT = "%a %b %d %H:%M:%S %z %Y"  # "Tue May 31 17:46:55 +0800 2011"

# stream name -> (resource, list key, post kind)
STREAMS: dict[str, tuple[str, str, str]] = {
    "mentions": ("statuses/mentions", "statuses", "mention"),
    "comments_to_me": ("comments/to_me", "comments", "comment"),
    "comment_mentions": ("comments/mentions", "comments", "comment"),
}
SEARCH = ("search/statuses/limited", "statuses", "search")


@dataclass(frozen=True)
class WeiboRecord:
    """A status or comment as monitoring keeps it."""

    kind: str  # mention | comment | search
    weibo_id: str
    uid: str
    screen_name: str
    text: str
    posted_at: datetime | None
    status_id: str | None
    raw: dict[str, Any]


def _id(value: Any) -> str:
    return str(value) if isinstance(value, int | str) and str(value).isdigit() else ""


def parse_created_at(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), CREATED_AT).astimezone(UTC)
    except ValueError:
        return None


def record_from(kind: str, item: Mapping[str, Any]) -> WeiboRecord | None:
    """A record of one list item; None for an item without an id or a user."""
    weibo_id = _id(item.get("idstr") or item.get("id"))
    user = item.get("user")
    if not weibo_id or not isinstance(user, Mapping):
        return None
    uid = _id(user.get("idstr") or user.get("id"))
    status = item.get("status")
    status_id = None
    if kind == "comment" and isinstance(status, Mapping):
        status_id = _id(status.get("idstr") or status.get("id")) or None
    keep = {k: item[k] for k in ("id", "idstr", "created_at", "text", "source") if k in item}
    keep["user"] = {k: user[k] for k in ("id", "idstr", "screen_name") if k in user}
    return WeiboRecord(
        kind=kind,
        weibo_id=weibo_id,
        uid=uid,
        screen_name=str(user.get("screen_name") or "")[:64],
        text=str(item.get("text") or ""),
        posted_at=parse_created_at(item.get("created_at")),
        status_id=status_id,
        raw=keep,
    )


def seconds_to_next_hour(now: datetime | None = None) -> float:
    """Weibo counts its rate limits per hour."""
    moment = now or utcnow()
    top = moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return max(1.0, (top - moment).total_seconds())


class WeiboClient:
    """Reads one account's streams (an *adapter*: the wire and no more)."""

    def __init__(self, settings: Mapping[str, Any], *, http: requests.Session | None = None):
        self.settings = dict(settings)
        self.http = http or requests.Session()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> WeiboClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def can_search(self) -> bool:
        return bool(self.settings.get("search_url"))

    def stream(self, name: str, since_id: str) -> list[WeiboRecord]:
        """Every item of a stream newer than ``since_id``, oldest first."""
        resource, key, kind = STREAMS[name]
        return self._pages(self.settings["api_url"], resource, key, kind, since_id, {})

    def search(self, keyword: str, since_id: str) -> list[WeiboRecord]:
        """Statuses with ``keyword`` newer than ``since_id`` (the commercial API only)."""
        if not self.can_search:
            raise PermanentFailure("Weibo keyword search needs the commercial 'search_url'")
        resource, key, kind = SEARCH
        token = self.settings.get("search_token") or self.settings["access_token"]
        return self._pages(
            self.settings["search_url"], resource, key, kind, since_id, {"q": keyword}, token
        )

    def _pages(
        self,
        base: str,
        resource: str,
        key: str,
        kind: str,
        since_id: str,
        extra: dict[str, str],
        token: str | None = None,
    ) -> list[WeiboRecord]:
        count = int(self.settings["count"])
        floor = int(since_id or 0)
        seen: dict[str, WeiboRecord] = {}
        for page in range(1, int(self.settings["max_pages"]) + 1):
            answer = self._get(
                base,
                resource,
                {**extra, "since_id": str(floor), "count": str(count), "page": str(page)},
                token or self.settings["access_token"],
            )
            items = answer.get(key)
            if not isinstance(items, list):
                raise TemporaryFailure(f"Weibo {resource} answered without {key!r}")
            for item in items:
                record = record_from(kind, item) if isinstance(item, Mapping) else None
                # A server that ignores since_id must not make us see old items again.
                if record is not None and int(record.weibo_id) > floor:
                    seen[record.weibo_id] = record
            if len(items) < count:
                break
        return sorted(seen.values(), key=lambda r: int(r.weibo_id))

    def _get(self, base: str, resource: str, params: dict[str, str], token: str) -> dict[str, Any]:
        path = f"/2/{resource}.json"
        try:
            response = self.http.get(
                base + path,
                params={"access_token": token, **params},
                timeout=self.settings["timeout"],
            )
        except requests.RequestException as exc:
            # requests' message quotes the URL, and the URL carries the access token.
            raise TemporaryFailure(f"Weibo {path} unreachable ({type(exc).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "error_code" in answer:
            self._raise_for(answer, path)
        if response.status_code >= 500:
            raise TemporaryFailure(f"Weibo {path} answered HTTP {response.status_code}")
        if response.status_code >= 400 or not isinstance(answer, dict):
            raise PermanentFailure(f"Weibo {path} answered HTTP {response.status_code}")
        return answer

    def _raise_for(self, answer: Mapping[str, Any], path: str) -> None:
        code = answer.get("error_code")
        reason = f"Weibo {path} error {code}: {str(answer.get('error', ''))[:200]}"
        if code in TOKEN_ERRORS:
            raise AuthExpired(reason)
        if code in RATE_LIMITS:
            raise RateLimited(reason, retry_after=seconds_to_next_hour())
        if code in TEMPORARY:
            raise TemporaryFailure(reason)
        raise PermanentFailure(reason)
