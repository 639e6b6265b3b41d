"""The Kuaidi100 (快递100) adapter: real-time query, subscribe, and the push's signature.

It speaks the wire protocol of PROTOCOLS §5 and nothing else: form posts out, JSON back,
mapped to plain dataclasses. It never touches the database; ``services.logistics`` applies
what it returns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)

QUERY_URL = "https://poll.kuaidi100.com/poll/query.do"
SUBSCRIBE_URL = "https://poll.kuaidi100.com/poll"
# Kuaidi100 writes times as China local time without a zone ("2026-11-25 18:04:00").
PROVIDER_ZONE = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Query returnCodes (official query doc's table; only 500 is quoted in PROTOCOLS §5, the
# rest is [U]): 400 incomplete data / unknown company, 408 phone check failed, 500 no record
# yet, 501 server error, 502 server busy, 503 bad sign, 601 key expired or out of queries.
# Subscribe: 501 duplicate (§5), 600 bad key, 601 key expired, 700-702 bad data / company.
_TEMPORARY_CODES = frozenset({"500", "501", "502"})
_AUTH_CODES = frozenset({"601"})


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def query_sign(param: str, key: str, customer: str) -> str:
    """``UPPER(MD5(param + key + customer))`` over the exact ``param`` string sent (§5)."""
    return _md5_upper(param + key + customer)


def callback_sign(param: str, salt: str) -> str:
    """``UPPER(MD5(param + salt))``: the ``sign`` of a push to our callback URL (§5)."""
    return _md5_upper(param + salt)


def dumps(data: Mapping[str, Any]) -> str:
    """Compact JSON with Chinese left as is: the string we sign is the string we send."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def parse_time(text: str) -> datetime:
    """A Kuaidi100 local time ("YYYY-MM-DD HH:MM:SS", Asia/Shanghai) as an aware UTC time."""
    local = datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=PROVIDER_ZONE)
    return local.astimezone(UTC)


def is_signed(state: str) -> bool:
    """State 3 is 签收; with ``resultv2`` Kuaidi100 also sends its sub-states 301-304."""
    return state == "3" or (len(state) == 3 and state.startswith("3"))


@dataclass(frozen=True)
class TrackingCheckpoint:
    """One line of a waybill's trace, with its time in UTC."""

    occurred_at: datetime
    context: str
    location: str = ""
    # The per-line status code with resultv2 ("0", "1", "3", "301", ...), "" if absent.
    state: str = ""


@dataclass(frozen=True)
class TrackingResult:
    """What Kuaidi100 knows of one waybill: its state and its checkpoints, newest first."""

    carrier: str
    tracking_number: str
    state: str
    checked: bool
    checkpoints: tuple[TrackingCheckpoint, ...] = field(default_factory=tuple)

    @property
    def signed(self) -> bool:
        return is_signed(self.state)


@dataclass(frozen=True)
class CallbackNotice:
    """A decoded push: the monitoring ``status`` and the ``lastResult`` it carries.

    ``carrier`` is the code we subscribed with: when Kuaidi100 corrects the company
    (``autoCheck`` "1") it names ours in ``comOld`` and its own in ``comNew``/``lastResult``.
    """

    status: str
    message: str
    carrier: str
    result: TrackingResult


def parse_result(payload: Mapping[str, Any]) -> TrackingResult:
    """Map a query response (or a push's ``lastResult``) to a :class:`TrackingResult`."""
    checkpoints = []
    for item in payload.get("data") or []:
        stamp = item.get("time") or item.get("ftime")
        if not stamp:
            continue
        checkpoints.append(
            TrackingCheckpoint(
                occurred_at=parse_time(str(stamp)),
                context=str(item.get("context", "")),
                # "location" with resultv2=4, "areaName" with resultv2=1.
                location=str(item.get("location") or item.get("areaName") or ""),
                state=str(item.get("statusCode") or ""),
            )
        )
    checkpoints.sort(key=lambda c: c.occurred_at, reverse=True)
    return TrackingResult(
        carrier=str(payload.get("com", "")),
        tracking_number=str(payload.get("nu", "")),
        state=str(payload.get("state", "")),
        checked=str(payload.get("ischeck", "0")) == "1",
        checkpoints=tuple(checkpoints),
    )


def parse_callback(param: str) -> CallbackNotice:
    """Decode the ``param`` of a push (verify its sign first); bad JSON raises ValueError."""
    body = json.loads(param)
    if not isinstance(body, dict) or not isinstance(body.get("lastResult"), dict):
        raise ValueError("param has no lastResult object")
    result = parse_result(body["lastResult"])
    carrier = str(body.get("comOld") or "") if str(body.get("autoCheck")) == "1" else ""
    return CallbackNotice(
        status=str(body.get("status", "")),
        message=str(body.get("message", "")),
        carrier=carrier or result.carrier,
        result=result,
    )


def _refusal(body: Mapping[str, Any], *, action: str) -> ConnectorError:
    code = str(body.get("returnCode", ""))
    text = f"kuaidi100 {action} refused: returnCode {code or '?'} {body.get('message', '')}"
    if code in _TEMPORARY_CODES:
        return TemporaryFailure(text.strip())
    if code in _AUTH_CODES:
        return AuthExpired(text.strip())
    return PermanentFailure(text.strip())


def _retry_after(response: requests.Response) -> float:
    # A locked waybill stays locked for about 30 minutes (§5): wait that long by default.
    try:
        return float(response.headers.get("Retry-After", "1800"))
    except ValueError:
        return 1800.0


class Kuaidi100Client:
    """Calls to Kuaidi100's enterprise API for one account (``customer`` and ``key``)."""

    def __init__(
        self,
        customer: str,
        key: str,
        query_url: str = QUERY_URL,
        subscribe_url: str = SUBSCRIBE_URL,
        timeout: float = 10.0,
    ) -> None:
        self.customer = customer
        self.key = key
        self.query_url = query_url
        self.subscribe_url = subscribe_url
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.session.close()

    def __enter__(self) -> Kuaidi100Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, com: str, num: str, phone: str | None = None) -> TrackingResult:
        """The current trace of one waybill (at most once per 30 minutes per waybill, §5)."""
        data: dict[str, str] = {"com": com, "num": num}
        if phone:
            data["phone"] = phone
        data.update({"resultv2": "1", "show": "0", "order": "desc"})
        param = dumps(data)
        body = self._post(
            self.query_url,
            {
                "customer": self.customer,
                "sign": query_sign(param, self.key, self.customer),
                "param": param,
            },
            action="query",
        )
        # A refusal carries "result": false; an answer carries "status": "200" and data.
        if body.get("result") is False or str(body.get("status", "200")) != "200":
            raise _refusal(body, action="query")
        return parse_result(body)

    def subscribe(
        self,
        com: str,
        num: str,
        *,
        callback_url: str,
        salt: str,
        phone: str | None = None,
    ) -> str:
        """Ask Kuaidi100 to push every change of a waybill to ``callback_url``.

        Returns ``"subscribed"``, or ``"duplicate"`` when Kuaidi100 already monitors it
        (returnCode 501): the earlier subscription keeps pushing, which is what we want.
        """
        parameters: dict[str, str] = {
            "callbackurl": callback_url,
            "salt": salt,
            "resultv2": "1",
            "autoCom": "0",
        }
        if phone:
            parameters["phone"] = phone
        # This request carries no sign: the key travels inside param (§5).
        param = dumps({"company": com, "number": num, "key": self.key, "parameters": parameters})
        body = self._post(
            self.subscribe_url, {"schema": "json", "param": param}, action="subscribe"
        )
        code = str(body.get("returnCode", ""))
        if code == "200" and body.get("result") is not False:
            return "subscribed"
        if code == "501":
            return "duplicate"
        raise _refusal(body, action="subscribe")

    def _post(self, url: str, form: Mapping[str, str], *, action: str) -> dict[str, Any]:
        try:
            response = self.session.post(url, data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TemporaryFailure(f"kuaidi100 {action}: {type(exc).__name__}") from exc
        if response.status_code == 429:
            raise RateLimited(f"kuaidi100 {action}: HTTP 429", _retry_after(response))
        if response.status_code >= 500:
            raise TemporaryFailure(f"kuaidi100 {action}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"kuaidi100 {action}: answer is not JSON") from exc
        if not isinstance(body, dict):
            raise PermanentFailure(f"kuaidi100 {action}: answer is not a JSON object")
        return body
