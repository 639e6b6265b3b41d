"""The sandbox gateway's state and rules: authorization, transactions, refunds, payment.

The rules are the real gateway's as far as PROTOCOLS §2 and the published API pages tell
them: the same paths, JSON shapes, error codes and 5-minute limits. State is in memory.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from koudai_flask.connectors.sandbox.wechatpay.keys import random_text
from koudai_flask.connectors.sandbox.wechatpay.wire import (
    CHINA,
    SCHEME,
    NotifySender,
    now_text,
    signed_headers,
)

_AUTH_PAIR = re.compile(r'(\w+)="([^"]*)"')
_OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*]{6,32}")
H5_URL_LIFETIME = 300  # an h5_url is valid for five minutes (§2.2)
STATE_TEXT = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
}


class GatewayError(Exception):
    """An error answer of the gateway: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _param_error(path: str) -> GatewayError:
    return GatewayError(
        400, "PARAM_ERROR", f"参数错误：/body/{path} 缺失或格式不正确 (invalid {path})"
    )


def _time_expire(value: Any) -> float | None:
    """``time_expire`` is RFC 3339 with an offset ("2026-11-25T20:30:00+08:00", §2.2)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _param_error("time_expire")
    return moment.timestamp()


@dataclass
class Transaction:
    out_trade_no: str
    trade_type: str  # JSAPI | MWEB
    description: str
    total: int
    notify_url: str
    prepay_id: str
    openid: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    created_at: float = field(default_factory=time.time)
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""
    refunded: int = 0
    expires_at: float | None = None  # from time_expire: no payment is taken after it


class WechatPayGateway:
    """The gateway's state and rules; :func:`create_wechatpay_sandbox` puts it on the wire."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        apiv3_key: str,
        merchant_public_key_pem: str,
        platform_private_key_pem: str,
        platform_serial: str,
        merchant_serial_no: str | None = None,
        notify_tries: int = 3,
        notify_interval: float = 0.2,
        notify_timeout: float = 5.0,
        refund_status: str = "SUCCESS",
    ) -> None:
        self.mchid, self.appid, self.platform_serial = mchid, appid, platform_serial
        self.merchant_serial_no = merchant_serial_no
        merchant_key = serialization.load_pem_public_key(merchant_public_key_pem.encode())
        platform_key = serialization.load_pem_private_key(platform_private_key_pem.encode(), None)
        assert isinstance(merchant_key, rsa.RSAPublicKey)
        assert isinstance(platform_key, rsa.RSAPrivateKey)
        self.merchant_key, self.platform_key = merchant_key, platform_key
        self.notifier = NotifySender(
            apiv3_key=apiv3_key.encode(),
            platform_key=platform_key,
            platform_serial=platform_serial,
            tries=notify_tries,
            interval=notify_interval,
            timeout=notify_timeout,
        )
        self.refund_status = refund_status
        self.transactions: dict[str, Transaction] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._injected: list[GatewayError] = []
        self._lock = threading.RLock()

    # -- signatures ----------------------------------------------------------------------

    def check_authorization(self, method: str, raw_uri: str, header: str, body: bytes) -> None:
        """Verify ``Authorization`` over the 5-line message (§2.1); GatewayError 401 if bad."""
        scheme, _, params = header.partition(" ")
        pairs = _AUTH_PAIR.findall(params)
        found = dict(pairs)
        if scheme != SCHEME or ",".join(f'{k}="{v}"' for k, v in pairs) != params:
            raise GatewayError(401, "SIGN_ERROR", "Authorization 格式错误 (malformed header)")
        if set(found) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            raise GatewayError(401, "SIGN_ERROR", "Authorization 缺少字段 (missing fields)")
        if found["mchid"] != self.mchid or (
            self.merchant_serial_no and found["serial_no"] != self.merchant_serial_no
        ):
            raise GatewayError(401, "SIGN_ERROR", "商户号或证书序列号错误 (mchid/serial_no)")
        timestamp = found["timestamp"]
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            raise GatewayError(401, "SIGN_ERROR", "timestamp 与当前时间相差过大 (clock skew)")
        head = f"{method}\n{raw_uri}\n{timestamp}\n{found['nonce_str']}\n".encode()
        message = head + body + b"\n"
        try:
            signature = base64.b64decode(found["signature"], validate=True)
            self.merchant_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise GatewayError(401, "SIGN_ERROR", "签名错误，验签失败 (bad signature)") from None

    def signed_headers(self, body: bytes) -> dict[str, str]:
        """The ``Wechatpay-*`` headers of an API answer (§2.3)."""
        return signed_headers(self.platform_key, self.platform_serial, body)

    def fail_next(
        self, status: int = 500, code: str = "SYSTEM_ERROR", message: str = "系统错误"
    ) -> None:
        """Answer the next API call with this error (to test the client's error handling)."""
        self._injected.append(GatewayError(status, code, message))

    def injected_error(self) -> GatewayError | None:
        with self._lock:
            return self._injected.pop(0) if self._injected else None

    # -- the API -------------------------------------------------------------------------

    def create(self, trade_type: str, data: dict[str, Any]) -> Transaction:
        """JSAPI (``trade_type="JSAPI"``) or H5 (``"MWEB"``) order (§2.2)."""
        if data.get("mchid") != self.mchid:
            raise GatewayError(400, "MCH_NOT_EXISTS", "商户号不存在 (unknown mchid)")
        if data.get("appid") != self.appid:
            raise GatewayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        description, no = data.get("description"), data.get("out_trade_no")
        if not isinstance(description, str) or not 1 <= len(description) <= 127:
            raise _param_error("description")
        if not isinstance(no, str) or not _OUT_TRADE_NO.fullmatch(no):
            raise _param_error("out_trade_no")
        notify_url = data.get("notify_url")
        # Must be reachable, http(s) and carry no query string.
        if (
            not isinstance(notify_url, str)
            or not notify_url.startswith("http")
            or "?" in notify_url
        ):
            raise _param_error("notify_url")
        amount = _object(data, "amount")
        total = amount.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise _param_error("amount/total")
        if amount.get("currency", "CNY") != "CNY":
            raise _param_error("amount/currency")
        openid = _object(data, "payer").get("openid")
        if trade_type == "JSAPI" and not isinstance(openid, str):
            raise _param_error("payer/openid")
        if trade_type == "MWEB":
            scene = _object(data, "scene_info")
            if not scene.get("payer_client_ip") or not _object(scene, "h5_info").get("type"):
                raise _param_error("scene_info")
        expires_at = _time_expire(data.get("time_expire"))
        with self._lock:
            old = self.transactions.get(no)
            if old is not None:
                if old.state in ("SUCCESS", "REFUND"):
                    raise GatewayError(400, "ORDERPAID", "该订单已支付 (already paid)")
                if old.state == "CLOSED":
                    raise GatewayError(400, "ORDER_CLOSED", "订单已关闭 (order closed)")
                if (old.total, old.trade_type) != (total, trade_type):
                    raise GatewayError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                return old
            stamp = datetime.now(CHINA).strftime("%Y%m%d%H%M%S")
            tx = Transaction(
                out_trade_no=no,
                trade_type=trade_type,
                description=description,
                total=total,
                notify_url=notify_url,
                prepay_id="wx" + stamp + secrets.token_hex(10),
                openid=openid or "o" + random_text(27),
                expires_at=expires_at,
            )
            self.transactions[no] = tx
            return tx

    def find(self, out_trade_no: str) -> Transaction:
        tx = self.transactions.get(out_trade_no)
        if tx is None:
            raise GatewayError(404, "ORDER_NOT_EXIST", "订单不存在 (no such order)")
        return tx

    def query(self, out_trade_no: str) -> dict[str, Any]:
        tx = self.find(out_trade_no)
        answer = self.resource(tx)
        if tx.state not in ("SUCCESS", "REFUND"):
            answer["amount"] = {"total": tx.total, "payer_currency": "CNY"}
            for key in ("transaction_id", "success_time", "bank_type", "payer"):
                answer.pop(key)
        return answer

    def close(self, out_trade_no: str) -> None:
        with self._lock:
            tx = self.transactions.get(out_trade_no)
            # Closing an unknown out_trade_no also answers 204 on the real gateway.
            if tx is not None and tx.state in ("SUCCESS", "REFUND"):
                raise GatewayError(400, "ORDERPAID", "订单已支付 (already paid)")
            if tx is not None:
                tx.state = "CLOSED"

    def refund(self, data: dict[str, Any]) -> dict[str, Any]:
        no, refund_no = data.get("out_trade_no"), data.get("out_refund_no")
        if not isinstance(no, str) or not isinstance(refund_no, str) or not refund_no:
            raise _param_error("out_trade_no" if not isinstance(no, str) else "out_refund_no")
        amount = _object(data, "amount")
        with self._lock:
            if refund_no in self.refunds:  # the same out_refund_no is the same refund
                return self.refunds[refund_no]
            tx = self.transactions.get(no)
            if tx is None:
                raise GatewayError(404, "RESOURCE_NOT_EXISTS", "订单不存在 (no such order)")
            if tx.state not in ("SUCCESS", "REFUND"):
                raise GatewayError(400, "INVALID_REQUEST", "订单未支付 (order not paid)")
            refund, total = amount.get("refund"), amount.get("total")
            if not isinstance(refund, int) or refund < 1 or total != tx.total:
                raise _param_error("amount")
            if tx.refunded + refund > tx.total:
                raise GatewayError(400, "INVALID_REQUEST", "退款金额超过可退金额 (too much)")
            tx.refunded += refund
            tx.state = "REFUND"
            answer: dict[str, Any] = {
                "refund_id": "50" + random_text(27, string.digits),
                "out_refund_no": refund_no,
                "transaction_id": tx.transaction_id,
                "out_trade_no": no,
                "channel": "ORIGINAL",
                "user_received_account": "支付用户零钱",
                "create_time": now_text(),
                "status": self.refund_status,
                "funds_account": "AVAILABLE",
                "amount": {
                    "total": tx.total,
                    "refund": refund,
                    "payer_total": tx.total,
                    "payer_refund": refund,
                    "settlement_total": tx.total,
                    "settlement_refund": refund,
                    "discount_refund": 0,
                    "currency": "CNY",
                },
            }
            if self.refund_status == "SUCCESS":
                answer["success_time"] = answer["create_time"]
            self.refunds[refund_no] = answer
            return answer

    def resource(self, tx: Transaction) -> dict[str, Any]:
        """The transaction as the query API and the notify's plaintext show it (§2.3)."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "out_trade_no": tx.out_trade_no,
            "transaction_id": tx.transaction_id,
            "trade_type": tx.trade_type,
            "trade_state": tx.state,
            "trade_state_desc": STATE_TEXT[tx.state],
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": tx.success_time,
            "payer": {"openid": tx.openid},
            "amount": {
                "total": tx.total,
                "payer_total": tx.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }

    # -- the cashier and the notifies ----------------------------------------------------

    def by_prepay_id(self, prepay_id: str) -> Transaction | None:
        return next((t for t in self.transactions.values() if t.prepay_id == prepay_id), None)

    def cashier_problem(self, tx: Transaction | None) -> str | None:
        """Why the cashier page cannot take a payment now, in the buyer's words; or None."""
        if tx is None:
            return "订单不存在 Unknown payment"
        if tx.state != "NOTPAY":
            return f"{STATE_TEXT[tx.state]} This payment is {tx.state.lower()}"
        if time.time() - tx.created_at > H5_URL_LIFETIME:
            return "支付链接已过期 This payment link has expired"
        if tx.expires_at is not None and time.time() > tx.expires_at:
            return "订单已过期 This order can no longer be paid"
        return None

    def pay(self, prepay_id: str, token: str) -> Transaction:
        """The buyer confirmed on the cashier page: SUCCESS, then notify the merchant."""
        with self._lock:
            tx = self.by_prepay_id(prepay_id)
            problem = self.cashier_problem(tx)
            if tx is None or problem is not None:
                raise GatewayError(409, "INVALID_REQUEST", problem or "")
            if not hmac.compare_digest(token, tx.token):
                raise GatewayError(403, "INVALID_REQUEST", "页面已失效 Stale payment page")
            tx.state = "SUCCESS"
            tx.transaction_id = "4200" + random_text(24, string.digits)
            tx.success_time = now_text()
        self.notifier.deliver(tx.out_trade_no, tx.notify_url, self.notify_body(tx))
        return tx

    def notify_body(
        self, tx: Transaction, *, event_type: str = "TRANSACTION.SUCCESS", **changes: Any
    ) -> bytes:
        """A notify body for ``tx``; ``changes`` override plaintext fields (for tests)."""
        plaintext = {**self.resource(tx), **changes}
        return self.notifier.envelope(plaintext, event_type=event_type, summary="支付成功")

    def send_notify(
        self, out_trade_no: str, *, duplicate: int = 1, signtest: bool = False
    ) -> list[int | None]:
        """POST the transaction's notify ``duplicate`` times now; the HTTP statuses.

        Every copy is the same event, freshly signed, as a redelivery is. With ``signtest``
        the signature is a ``WECHATPAY/SIGNTEST/`` probe that the merchant must refuse.
        """
        tx = self.find(out_trade_no)
        body = self.notify_body(tx)
        return [
            self.notifier.post(out_trade_no, tx.notify_url, body, signtest=signtest)
            for _ in range(duplicate)
        ]
