"""The sandbox's memory: apps, seller sessions, items and SKUs, trades, TMC queues, faults.

Everything is guarded by one lock: the loopback server answers on several threads and the
tests poke the same state from theirs.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from koudai_flask.connectors.logistics.carriers import CARRIERS
from koudai_flask.connectors.taobao.client import format_time

SELLER_ID = 2200000000001
SELLER_NICK = "sandbox_koudai_shop"
ACCESS_TTL = 86400  # seconds, as a real token's expires_in for a w1 app
REFRESH_TTL = 30 * 86400
# The TOP codes the sandbox's taobao.logistics.companies.get would list: our carrier
# table's plus the generic ones TOP documents (§1.6).
COMPANY_CODES = frozenset({c.top_code for c in CARRIERS.values() if c.top_code} | {"POST", "OTHER"})
FAULT_KINDS = ("5xx", "timeout", "rate_limit", "session_expired", "isp", "isv", "bad_json")


class TopError(Exception):
    """A refusal the gateway writes as ``error_response`` (§1.5)."""

    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        super().__init__(f"{code} {msg} {sub_code}")
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.sub_code:
            error["sub_code"] = self.sub_code
        if self.sub_msg:
            error["sub_msg"] = self.sub_msg
        error["request_id"] = request_id
        return {"error_response": error}


def invalid(message: str, sub_code: str = "isv.invalid-parameter") -> TopError:
    """A business refusal: code 15 with an ``isv.*`` sub_code (§1.5)."""
    return TopError(15, "Remote service error", sub_code, message)


def now_text() -> str:
    return format_time(datetime.now(UTC))


@dataclass
class Grant:
    """A seller's authorization of one app: the session and its refresh token."""

    app_key: str
    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float
    user_id: int = SELLER_ID
    user_nick: str = SELLER_NICK


@dataclass
class SandboxSku:
    sku_id: int
    properties: str
    properties_name: str
    quantity: int
    price: str
    outer_id: str = ""
    modified: str = field(default_factory=now_text)


@dataclass
class SandboxItem:
    num_iid: int
    title: str
    price: str
    num: int
    outer_id: str = ""
    desc: str = ""
    pic_url: str = ""
    item_imgs: list[str] = field(default_factory=list)
    approve_status: str = "onsale"
    skus: dict[int, SandboxSku] = field(default_factory=dict)
    modified: str = field(default_factory=now_text)

    def recount(self) -> None:
        # An item with SKUs has num = Σ sku quantities, as on Taobao.
        if self.skus:
            self.num = sum(sku.quantity for sku in self.skus.values())


@dataclass
class TmcEntry:
    id: int
    topic: str
    content: str
    pub_time: str
    pub_app_key: str
    user_id: int = SELLER_ID
    user_nick: str = SELLER_NICK


@dataclass
class Delivery:
    """One message's state in one (app, group) queue."""

    visible_at: float = 0.0
    confirmed: bool = False


@dataclass
class Fault:
    kind: str
    seconds: float


class TopState:
    """All the sandbox holds; the gateway and the test helpers both go through it."""

    def __init__(self, *, visibility_timeout: float = 30.0, ban_seconds: int = 5) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_grants: dict[str, Grant] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code → (app_key, redirect_uri)
        self.items: dict[int, SandboxItem] = {}
        self.trades: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, tuple[str, str]] = {}  # tid → (company_code, out_sid)
        self.messages: list[TmcEntry] = []
        self.deliveries: dict[tuple[str, str], dict[int, Delivery]] = {}
        self.calls: Counter[str] = Counter()
        self.faults: deque[Fault] = deque()
        self.latency = 0.0
        self.visibility_timeout = visibility_timeout
        self.ban_seconds = ban_seconds
        self._clock_offset = 0.0
        self._ids = itertools.count(1)

    # -- time and ids ----------------------------------------------------------------------

    def clock(self) -> float:
        """Monotonic seconds, plus whatever :meth:`advance` added (TMC visibility)."""
        return time.monotonic() + self._clock_offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._clock_offset += seconds

    def next_id(self, base: int) -> int:
        return base + next(self._ids)

    # -- apps and sessions -----------------------------------------------------------------

    def register_app(self, app_key: str | None = None, secret: str | None = None) -> str:
        app_key = app_key or str(self.next_id(23000000))
        with self.lock:
            self.apps[app_key] = secret or secrets.token_hex(16)
        return app_key

    def issue_grant(self, app_key: str) -> Grant:
        if app_key not in self.apps:
            raise KeyError(app_key)
        now = time.time()
        grant = Grant(
            app_key=app_key,
            access_token="6200" + secrets.token_hex(20),
            refresh_token="6201" + secrets.token_hex(20),
            expires_at=now + ACCESS_TTL,
            refresh_expires_at=now + REFRESH_TTL,
        )
        with self.lock:
            self.grants[grant.access_token] = grant
            self.refresh_grants[grant.refresh_token] = grant
        return grant

    def expire_session(self, access_token: str) -> None:
        with self.lock:
            self.grants[access_token].expires_at = 0.0

    def check_session(self, app_key: str, session: str) -> Grant:
        if not session:
            raise TopError(26, "Missing session")
        grant = self.grants.get(session)
        if grant is None or grant.app_key != app_key:
            raise TopError(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")
        if grant.expires_at <= time.time():
            raise TopError(27, "Invalid session", "session-expired", "SessionKey过期")
        return grant

    # -- faults ----------------------------------------------------------------------------

    def fail_next(self, n: int, kind: str, seconds: float = 3.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind is one of {FAULT_KINDS}")
        with self.lock:
            self.faults.extend(Fault(kind, seconds) for _ in range(n))

    def take_fault(self) -> Fault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    # -- TMC -------------------------------------------------------------------------------

    def publish(self, topic: str, content: dict[str, Any], app_key: str = "") -> TmcEntry:
        entry = TmcEntry(
            id=self.next_id(7100000000000),
            topic=topic,
            # §1.8: content travels as a JSON string inside the JSON answer.
            content=json.dumps(content, ensure_ascii=False, separators=(",", ":")),
            pub_time=now_text(),
            pub_app_key=app_key or "12497914",
        )
        with self.lock:
            self.messages.append(entry)
        return entry

    def consume(self, app_key: str, group: str, quantity: int) -> list[TmcEntry]:
        with self.lock:
            queue = self.deliveries.setdefault((app_key, group), {})
            now, batch = self.clock(), []
            for entry in self.messages:
                state = queue.setdefault(entry.id, Delivery())
                if state.confirmed or state.visible_at > now:
                    continue
                # Hidden until confirmed or the visibility timeout passes, then redelivered.
                state.visible_at = now + self.visibility_timeout
                batch.append(entry)
                if len(batch) >= quantity:
                    break
            return batch

    def confirm(self, app_key: str, group: str, ids: list[int]) -> None:
        with self.lock:
            queue = self.deliveries.setdefault((app_key, group), {})
            known = {entry.id for entry in self.messages}
            for message_id in ids:
                if message_id in known:
                    queue.setdefault(message_id, Delivery()).confirmed = True
