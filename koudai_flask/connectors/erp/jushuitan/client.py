"""The Jushuitan open platform v2 client: common parameters, signing, typed errors, calls.

Every call is a form POST of ``app_key, access_token, timestamp (unix s), charset=utf-8,
version=2, biz (compact JSON), sign`` (PROTOCOLS §6.1); the answer is ``{"code", "msg",
"data"}`` with ``code == 0`` for success. Failures become the connector errors:

- 199 (more than 5 calls a second) and 200 (more than 100 a minute) → ``RateLimited``,
  waiting what the message says, else 1 s for 199 and 60 s for 200;
- 100 (access token invalid or expired) and 150 (a service-provider app may not refresh:
  the merchant must authorize again) → ``AuthExpired``;
- HTTP 5xx, timeouts, refused connections, an answer that is not JSON → ``TemporaryFailure``;
- anything else (10 bad sign, 140 clock skew, 190 no API permission, a refused biz) →
  ``PermanentFailure`` naming the remote code and message.

The client never refreshes on its own: on ``AuthExpired`` the caller calls :meth:`refresh`
and stores the new pair. It never logs the app secret or the tokens, and its repr hides them.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from koudai_flask.connectors.erp.jushuitan.records import (
    InventoryRow,
    JushuitanOrder,
    JushuitanToken,
    ShipmentRow,
    UploadResult,
    format_time,
)
from koudai_flask.connectors.erp.jushuitan.signing import sign
from koudai_flask.connectors.errors import (
    AuthExpired,
    ConnectorError,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://openapi.jushuitan.com"
SANDBOX_URL = "https://dev-api.jushuitan.com"
INVENTORY_QUERY = "/open/inventory/query"
ORDERS_UPLOAD = "/open/jushuitan/orders/upload"
LOGISTIC_QUERY = "/open/logistic/query"
REFRESH_TOKEN = "/openWeb/auth/refreshToken"
FORM_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"

# Per-request limits the public v2 SDKs document for each endpoint.
MAX_INVENTORY_PAGE = 100  # page_size, and sku_ids per request
MAX_LOGISTIC_PAGE = 50
MAX_LOGISTIC_SO_IDS = 20
MAX_WINDOW = timedelta(days=7)  # modified_begin..modified_end
# Orders per upload call: the SDKs give no limit; 50 is a cautious batch [U].
UPLOAD_BATCH = 50

RATE_LIMIT_WAIT = {199: 1.0, 200: 60.0}
_AUTH_CODES = frozenset({100, 150})
_WAIT_IN_MESSAGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:秒|s\b|secs?\b|seconds?\b)", re.IGNORECASE)


def retry_after(code: int, msg: str) -> float:
    """How long to wait after a rate-limit refusal: the message's "N秒"/"N seconds" if any."""
    found = _WAIT_IN_MESSAGE.search(msg or "")
    if found:
        return float(found.group(1))
    return RATE_LIMIT_WAIT.get(code, 1.0)


def classify_error(path: str, code: int, msg: str) -> ConnectorError:
    """Map a non-zero ``code`` to the connector error the job layer acts on."""
    text = f"jushuitan {path}: code {code} {msg}".strip()
    if code in RATE_LIMIT_WAIT:
        return RateLimited(text, retry_after(code, msg))
    if code in _AUTH_CODES:
        return AuthExpired(text)
    return PermanentFailure(text)


def _check_window(begin: datetime | None, end: datetime | None) -> None:
    if (begin is None) != (end is None):
        raise ValueError("modified_begin and modified_end go together")
    if begin is not None and end is not None:
        format_time(begin)
        format_time(end)
        if end < begin:
            raise ValueError("modified_end is before modified_begin")
        if end - begin > MAX_WINDOW:
            raise ValueError("a Jushuitan modified window spans at most 7 days; split it")


def _chunks(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _unique(values: Iterable[str], what: str) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        text = str(value).strip()
        if not text or "," in text:
            raise ValueError(f"{what} {value!r}: empty, or has a comma")
        seen.setdefault(text, None)
    return list(seen)


class JushuitanClient:
    """Signed calls to one Jushuitan open platform for one authorized company."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        *,
        refresh_token: str | None = None,
        timeout: float = 10.0,
        http: requests.Session | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self._access_token = access_token
        self._refresh_token = refresh_token
        self.timeout = timeout
        self.http = http or requests.Session()
        self._clock = clock or time.time

    def __repr__(self) -> str:
        # Never the secret or the tokens: this ends up in logs and tracebacks.
        return f"JushuitanClient({self.base_url!r}, app_key={self.app_key!r})"

    @property
    def access_token(self) -> str:
        return self._access_token

    @property
    def refresh_token(self) -> str | None:
        return self._refresh_token

    def close(self) -> None:
        self.http.close()

    # -- transport -------------------------------------------------------------------------

    def signed_form(self, biz: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """The common parameters with ``biz`` as compact JSON and their ``sign``."""
        form = {
            "app_key": self.app_key,
            "access_token": self._access_token,
            "timestamp": str(int(self._clock())),
            "charset": "utf-8",
            "version": "2",
            "biz": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        form["sign"] = sign(form, self._app_secret)
        return form

    def _post(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        """POST the form; return ``data`` of a ``code == 0`` answer or raise a typed error."""
        try:
            response = self.http.post(
                self.base_url + path,
                data=urlencode(form).encode("ascii"),
                headers={"Content-Type": FORM_TYPE},
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise TemporaryFailure(f"jushuitan {path}: timed out after {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise TemporaryFailure(f"jushuitan {path}: {type(exc).__name__}") from exc
        log.debug("jushuitan %s: HTTP %s", path, response.status_code)
        if response.status_code == 429:
            raise RateLimited(f"jushuitan {path}: HTTP 429", RATE_LIMIT_WAIT[199])
        if response.status_code >= 500:
            raise TemporaryFailure(f"jushuitan {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentFailure(f"jushuitan {path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"jushuitan {path}: answer is not JSON") from exc
        if not isinstance(body, dict) or "code" not in body:
            raise TemporaryFailure(f"jushuitan {path}: answer has no code")
        try:
            code = int(body["code"])
        except (TypeError, ValueError):
            raise TemporaryFailure(f"jushuitan {path}: code {body['code']!r}") from None
        if code != 0:
            raise classify_error(path, code, str(body.get("msg") or ""))
        data = body.get("data")
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise TemporaryFailure(f"jushuitan {path}: data is not a JSON object")
        return data

    def call(
        self, path: str, biz: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Call a business endpoint; return the answer's ``data`` object."""
        return self._post(path, self.signed_form(biz))

    def refresh(self) -> JushuitanToken:
        """Swap the refresh token for a new pair (``/openWeb/auth/refreshToken``) and keep it.

        The old pair stops working. Without a refresh token this is ``AuthExpired``: the
        merchant has to authorize the app again.
        """
        if not self._refresh_token:
            raise AuthExpired("jushuitan: no refresh token; the merchant must authorize again")
        form = {
            "app_key": self.app_key,
            "timestamp": str(int(self._clock())),
            "grant_type": "refresh_token",
            "charset": "utf-8",
            "refresh_token": self._refresh_token,
            "scope": "all",
        }
        form["sign"] = sign(form, self._app_secret)
        token = JushuitanToken.from_wire(self._post(REFRESH_TOKEN, form))
        self._access_token, self._refresh_token = token.access_token, token.refresh_token
        return token

    def _pages(self, path: str, biz: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        """The rows under ``data[key]`` of page 1, 2, ... while ``has_next`` says so."""
        page_index = 1
        while True:
            data = self.call(path, {**biz, "page_index": page_index})
            rows = [row for row in data.get(key) or [] if isinstance(row, dict)]
            yield from rows
            if not data.get("has_next"):
                return
            if not rows:  # a server that says "more" and sends nothing would loop forever
                raise TemporaryFailure(f"jushuitan {path}: has_next on an empty page")
            page_index += 1

    # -- inventory -------------------------------------------------------------------------

    def query_inventory(
        self,
        *,
        sku_ids: Iterable[str] | None = None,
        modified_begin: datetime | None = None,
        modified_end: datetime | None = None,
        page_size: int = 100,
        wms_co_id: int | None = None,
    ) -> Iterator[InventoryRow]:
        """Stock rows by SKU and/or modified window (``/open/inventory/query``), lazily paged.

        ``sku_ids`` go 100 a request; the window spans at most 7 days. One of the two is
        required. Without ``wms_co_id`` the rows are the company's total over all warehouses.
        The arguments are checked before any call.
        """
        if not 1 <= page_size <= MAX_INVENTORY_PAGE:
            raise ValueError(f"inventory page_size is 1..{MAX_INVENTORY_PAGE}")
        _check_window(modified_begin, modified_end)
        skus = None if sku_ids is None else _unique(sku_ids, "sku_id")
        if skus is None and modified_begin is None:
            raise ValueError("query_inventory needs sku_ids or a modified window")
        biz: dict[str, Any] = {}
        if wms_co_id is not None:
            biz["wms_co_id"] = wms_co_id
        if modified_begin is not None and modified_end is not None:
            biz["modified_begin"] = format_time(modified_begin)
            biz["modified_end"] = format_time(modified_end)
        biz["page_size"] = page_size
        biz["has_lock_qty"] = True
        return self._inventory_rows(biz, skus)

    def _inventory_rows(
        self, biz: dict[str, Any], skus: list[str] | None
    ) -> Iterator[InventoryRow]:
        batches = (
            [None] if skus is None else [",".join(c) for c in _chunks(skus, MAX_INVENTORY_PAGE)]
        )
        for batch in batches:
            request = biz if batch is None else {"sku_ids": batch, **biz}
            for row in self._pages(INVENTORY_QUERY, request, "inventorys"):
                yield InventoryRow.from_wire(row)

    # -- orders ----------------------------------------------------------------------------

    def upload_orders(self, orders: Iterable[JushuitanOrder]) -> list[UploadResult]:
        """Create or update orders (``/open/jushuitan/orders/upload``), one result each.

        ``biz`` is a JSON array of orders. An order Jushuitan refuses comes back with
        ``issuccess=False`` and its ``msg``; only a refused call raises.
        """
        batch = list(orders)
        for order in batch:
            if not isinstance(order, JushuitanOrder):
                raise TypeError(f"upload_orders takes JushuitanOrder, not {type(order).__name__}")
        results: list[UploadResult] = []
        for start in range(0, len(batch), UPLOAD_BATCH):
            wire = [order.to_wire() for order in batch[start : start + UPLOAD_BATCH]]
            data = self.call(ORDERS_UPLOAD, wire)
            rows = data.get("datas") or []
            results.extend(UploadResult.from_wire(r) for r in rows if isinstance(r, dict))
        return results

    # -- shipments -------------------------------------------------------------------------

    def query_logistics(
        self,
        *,
        so_ids: Iterable[str] | None = None,
        modified_begin: datetime | None = None,
        modified_end: datetime | None = None,
        page_size: int = MAX_LOGISTIC_PAGE,
    ) -> Iterator[ShipmentRow]:
        """Shipped orders by our order numbers and/or modified window (``/open/logistic/query``).

        ``so_ids`` go 20 a request. A window is matched on the modification time
        (``date_type=0``; the platform's default would be the ship date), so a cursor over
        it also sees a waybill changed after shipping.
        """
        if not 1 <= page_size <= MAX_LOGISTIC_PAGE:
            raise ValueError(f"logistic page_size is 1..{MAX_LOGISTIC_PAGE}")
        _check_window(modified_begin, modified_end)
        orders = None if so_ids is None else _unique(so_ids, "so_id")
        if orders is None and modified_begin is None:
            raise ValueError("query_logistics needs so_ids or a modified window")
        biz: dict[str, Any] = {"page_size": page_size}
        if modified_begin is not None and modified_end is not None:
            biz.update(
                modified_begin=format_time(modified_begin),
                modified_end=format_time(modified_end),
                date_type=0,
            )
        return self._shipment_rows(biz, orders)

    def _shipment_rows(
        self, biz: dict[str, Any], so_ids: list[str] | None
    ) -> Iterator[ShipmentRow]:
        batches = [None] if so_ids is None else list(_chunks(so_ids, MAX_LOGISTIC_SO_IDS))
        for batch in batches:
            request = biz if batch is None else {"so_ids": batch, **biz}
            for row in self._pages(LOGISTIC_QUERY, request, "orders"):
                yield ShipmentRow.from_wire(row)


__all__ = [
    "INVENTORY_QUERY",
    "LOGISTIC_QUERY",
    "ORDERS_UPLOAD",
    "PRODUCTION_URL",
    "REFRESH_TOKEN",
    "SANDBOX_URL",
    "JushuitanClient",
    "classify_error",
    "retry_after",
]
