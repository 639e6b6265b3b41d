"""The sandbox's memory: apps, seller sessions, items and SKUs, trades, TMC queues, faults.

Everything is guarded by one lock: the loopback server answers on several threads and the
tests poke the same state from theirs.

Stock follows Taobao's default rule, 拍下减库存: a trade takes its stock when it is created
(paid or not), and closing it gives the stock back. Every change of an item's or a SKU's
quantity (a sale, a close, the seller's own edit, and our own API updates alike: TOP does
not tell callers apart) publishes ``taobao_item_ItemStockChanged``; a consumer recognises
its own echo itself.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import secrets
import threading
import time
from collections import Counter
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
# What fail_next can inject: an HTTP 502 page; a sleep past the caller's timeout (the call
# still runs afterwards, as a real one may); a slow but complete answer; code 7 once; a code 7
# ban on every call for N seconds of the sandbox clock; code 27; isp.*/isv.* refusals; a cut
# JSON body.
FAULT_KINDS = (
    "5xx",
    "timeout",
    "slow",
    "rate_limit",
    "ban",
    "session_expired",
    "isp",
    "isv",
    "bad_json",
)
DEFAULT_FAULT_SECONDS = {"timeout": 3.0, "slow": 1.0}


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


def ban_error(seconds: float) -> TopError:
    """§1.5: a call-limit refusal, code 7, with the ban's length in ``sub_msg``."""
    return TopError(
        7,
        "App Call Limited",
        "accesscontrol.limited-by-app-access-count",
        f"This ban will last for {math.ceil(seconds)} more seconds",
    )


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
    # TOP's "pid:vid:name:value;..." ("1627207:28326:颜色分类:红色;20509:28314:尺码:S").
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
    cid: int = 50000436  # a leaf category id (T恤); the sandbox does not check categories
    props: str = ""
    props_name: str = ""

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
    method: str | None = None  # only calls of this TOP method take the fault


class TopState:
    """All the sandbox holds; the gateway and the test helpers both go through it."""

    def __init__(self, *, visibility_timeout: float = 30.0, ban_seconds: int = 5) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, str] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_grants: dict[str, Grant] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code → (app_key, redirect_uri)
        self.items: dict[int, SandboxItem] = {}
        self.sku_owner: dict[int, int] = {}  # sku_id → num_iid: SKU ids are unique site-wide
        self.trades: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, tuple[str, str]] = {}  # tid → (company_code, out_sid)
        self.messages: list[TmcEntry] = []
        self.deliveries: dict[tuple[str, str], dict[int, Delivery]] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.latency = 0.0
        self.banned_until = 0.0  # on the sandbox clock; see the "ban" fault
        self.visibility_timeout = visibility_timeout
        self.ban_seconds = ban_seconds
        self.images: set[str] = set()  # names served at /img/<name>.png
        self.base_url = ""  # "http://127.0.0.1:<port>" once the server listens
        self.duplicates_pending = 0
        self.shuffle_seeds: list[int] = []
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

    def fail_next(
        self, n: int, kind: str, seconds: float | None = None, method: str | None = None
    ) -> None:
        """Queue ``n`` faults of ``kind``; with ``method``, only calls of that method take them.

        ``seconds`` is the sleep of "timeout"/"slow" (3 s / 1 s by default) and the N of
        "rate_limit"/"ban" ("This ban will last for N more seconds"; ``ban_seconds`` by
        default).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind is one of {FAULT_KINDS}")
        if n < 0 or (seconds is not None and seconds < 0):
            raise ValueError("fail_next needs n >= 0 and seconds >= 0")
        if seconds is None:
            seconds = DEFAULT_FAULT_SECONDS.get(kind, float(self.ban_seconds))
        with self.lock:
            self.faults.extend(Fault(kind, seconds, method) for _ in range(n))

    def take_fault(self, method: str = "") -> Fault | None:
        """The first queued fault for ``method`` (or for any method), removed from the queue."""
        with self.lock:
            for position, fault in enumerate(self.faults):
                if fault.method is None or fault.method == method:
                    return self.faults.pop(position)
            return None

    def start_ban(self, seconds: float) -> None:
        with self.lock:
            self.banned_until = max(self.banned_until, self.clock() + seconds)

    def ban_left(self) -> int:
        """Whole seconds of the current ban still to run (0 when there is none)."""
        with self.lock:
            return max(0, math.ceil(self.banned_until - self.clock()))

    # -- images ----------------------------------------------------------------------------

    def add_image(self, name: str) -> str:
        """Register a picture the gateway serves, and return its URL."""
        with self.lock:
            self.images.add(name)
        return f"{self.base_url}/img/{name}.png"

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

    def duplicate_next(self, n: int) -> None:
        """Deliver each of the next ``n`` messages twice (the copy right after it, same id)."""
        if n < 0:
            raise ValueError("duplicate_next needs n >= 0")
        with self.lock:
            self.duplicates_pending += n

    def shuffle_next(self, seed: int = 0) -> None:
        """Hand out the next non-empty consume batch in another order than TMC's own."""
        with self.lock:
            self.shuffle_seeds.append(seed)

    def consume(self, app_key: str, group: str, quantity: int) -> list[TmcEntry]:
        with self.lock:
            queue = self.deliveries.setdefault((app_key, group), {})
            now = self.clock()
            batch: list[TmcEntry] = []
            for entry in self.messages:
                if len(batch) >= quantity:
                    break
                state = queue.setdefault(entry.id, Delivery())
                if state.confirmed or state.visible_at > now:
                    continue
                # Hidden until confirmed or the visibility timeout passes, then redelivered.
                state.visible_at = now + self.visibility_timeout
                batch.append(entry)
                if self.duplicates_pending and len(batch) < quantity:
                    # TMC is at-least-once: the same message (same id) may come twice.
                    self.duplicates_pending -= 1
                    batch.append(entry)
            if batch and self.shuffle_seeds:
                batch = shuffled(batch, self.shuffle_seeds.pop(0))
            return batch

    def confirm(self, app_key: str, group: str, ids: list[int]) -> None:
        with self.lock:
            queue = self.deliveries.setdefault((app_key, group), {})
            known = {entry.id for entry in self.messages}
            for message_id in ids:
                if message_id in known:
                    queue.setdefault(message_id, Delivery()).confirmed = True


def shuffled(batch: list[TmcEntry], seed: int) -> list[TmcEntry]:
    """``batch`` in a seeded random order that is never its delivery order (when it can
    differ at all), so a test of out-of-order handling cannot pass by luck."""
    order = list(batch)
    random.Random(seed).shuffle(order)
    if [e.id for e in order] == [e.id for e in batch] and len({e.id for e in batch}) > 1:
        order.reverse()
    return order
