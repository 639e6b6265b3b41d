"""The sandbox gateway's state and rules: trades, the API methods, notifies and returns.

Everything here is the gateway's side of PROTOCOLS.md §4, written independently of the
client in :mod:`koudai_flask.payments.alipay` so that a mistake shared by both cannot pass.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from flask import Response

from koudai_flask.connectors.sandbox.alipay.keys import (
    SandboxKeys,
    rsa2_sign,
    rsa2_verify,
    sign_callback,
)

GMT8 = timezone(timedelta(hours=8), "GMT+8")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_SKEW = timedelta(minutes=10)
PAY_METHODS = {
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
}
API_METHODS = ("alipay.trade.query", "alipay.trade.close", "alipay.trade.refund")
MESSAGES = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
AMOUNT = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?")
NOTIFY_ATTEMPTS = 3


def _now() -> str:
    return datetime.now(GMT8).strftime(TIME_FORMAT)


class GatewayError(Exception):
    def __init__(self, code: str, sub_code: str, sub_msg: str) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.payload = {
            "code": code,
            "msg": MESSAGES[code],
            "sub_code": sub_code,
            "sub_msg": sub_msg,
        }


def _not_found() -> GatewayError:
    return GatewayError("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")


@dataclass
class Trade:
    out_trade_no: str
    trade_no: str
    total_amount: str
    subject: str
    notify_url: str
    return_url: str
    token: str
    status: str = "WAIT_BUYER_PAY"
    gmt_create: str = field(default_factory=_now)
    gmt_payment: str = ""
    notify_id: str = ""
    refunds: dict[str, str] = field(default_factory=dict)  # out_request_no -> amount
    time_expire: datetime | None = None  # the cashier takes no payment after it

    @property
    def refunded(self) -> Decimal:
        return sum((Decimal(a) for a in self.refunds.values()), Decimal("0"))


class AlipayGateway:
    """The fake gateway's trades and keys, and what it does with a verified request."""

    def __init__(self, keys: SandboxKeys) -> None:
        self.keys = keys
        self.trades: dict[str, Trade] = {}
        # Every notify POST made: (out_trade_no, HTTP status or 0 if unreachable, body).
        self.deliveries: list[tuple[str, int, str]] = []
        self.buyer_id = "2088" + "".join(secrets.choice("0123456789") for _ in range(12))
        self._faults: list[GatewayError] = []
        self._lock = threading.RLock()

    # -- requests ----------------------------------------------------------------------------

    def check_request(self, params: dict[str, str]) -> None:
        """Refuse a request the way the gateway does: missing, invalid, then unsigned."""
        for name in ("app_id", "method", "sign_type", "sign", "timestamp", "version"):
            if not params.get(name):
                sub = "isv.missing-" + ("signature" if name == "sign" else name.replace("_", "-"))
                raise GatewayError("40001", sub, f"缺少参数 {name}")
        if params["app_id"] != self.keys.app_id:
            raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数")
        if params["sign_type"] != "RSA2":
            raise GatewayError("40002", "isv.invalid-signature-type", "无效的签名类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise GatewayError("40002", "isv.invalid-charset", "字符集错误")
        if params.get("format", "JSON").upper() != "JSON":
            raise GatewayError("40002", "isv.invalid-format", "无效的数据格式")
        try:
            sent = datetime.strptime(params["timestamp"], TIME_FORMAT).replace(tzinfo=GMT8)
        except ValueError:
            raise GatewayError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        if abs(datetime.now(UTC) - sent) > CLOCK_SKEW:
            raise GatewayError("40002", "isv.invalid-timestamp", "时间戳与服务器时间相差过大")
        # §4: every parameter but sign and empty ones, sign_type included, sorted, raw values.
        content = "&".join(
            f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != ""
        )
        if not rsa2_verify(content, params["sign"], self.keys.app_public_key):
            raise GatewayError("40002", "isv.invalid-signature", "验签出错，请确认签名私钥")

    def open_trade(self, method: str, biz: dict[str, Any], params: dict[str, str]) -> Trade:
        """wap.pay / page.pay: create (or reopen) the trade the cashier will collect."""
        out_trade_no = str(biz.get("out_trade_no", ""))
        amount = str(biz.get("total_amount", ""))
        if not out_trade_no or not AMOUNT.fullmatch(amount) or Decimal(amount) <= 0:
            raise GatewayError("40004", "ACQ.INVALID_PARAMETER", "参数无效")
        if biz.get("product_code") != PAY_METHODS[method] or not biz.get("subject"):
            raise GatewayError("40004", "ACQ.INVALID_PARAMETER", "product_code或subject无效")
        time_expire = None
        if biz.get("time_expire") is not None:
            try:  # "yyyy-MM-dd HH:mm:ss", Beijing time
                time_expire = datetime.strptime(str(biz["time_expire"]), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise GatewayError(
                    "40004", "ACQ.INVALID_PARAMETER", "time_expire格式错误"
                ) from None
            time_expire = time_expire.replace(tzinfo=GMT8)
        with self._lock:
            trade = self.trades.get(out_trade_no)
            if trade is None:
                trade = Trade(
                    out_trade_no=out_trade_no,
                    trade_no=datetime.now(GMT8).strftime("%Y%m%d")
                    + "2200"
                    + "".join(secrets.choice("0123456789") for _ in range(16)),
                    total_amount=f"{Decimal(amount):.2f}",
                    subject=str(biz["subject"]),
                    notify_url=params.get("notify_url", ""),
                    return_url=params.get("return_url", ""),
                    token=secrets.token_urlsafe(16),
                    time_expire=time_expire,
                )
                self.trades[out_trade_no] = trade
            elif trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise GatewayError("40004", "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            elif trade.status == "TRADE_CLOSED":
                raise GatewayError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            elif Decimal(trade.total_amount) != Decimal(amount):
                raise GatewayError("40004", "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return trade

    def find(self, biz: dict[str, Any]) -> Trade:
        with self._lock:
            if biz.get("out_trade_no") in self.trades:
                return self.trades[biz["out_trade_no"]]
            for trade in self.trades.values():
                if biz.get("trade_no") and trade.trade_no == biz["trade_no"]:
                    return trade
        raise _not_found()

    def query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self.find(biz)
        paid = trade.total_amount if trade.gmt_payment else "0.00"
        reply = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "sbx***@sandbox.com",
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "buyer_pay_amount": paid,
            "receipt_amount": paid,
            "point_amount": "0.00",
            "invoice_amount": paid,
            "buyer_user_id": self.buyer_id,
        }
        if trade.gmt_payment:
            reply["send_pay_date"] = trade.gmt_payment
        return reply

    def close(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self.find(biz)
        with self._lock:
            if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.status = "TRADE_CLOSED"
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = self.find(biz)
        amount = str(biz.get("refund_amount", ""))
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        if not AMOUNT.fullmatch(amount) or Decimal(amount) <= 0:
            raise GatewayError("40004", "ACQ.INVALID_PARAMETER", "refund_amount无效")
        with self._lock:
            replay = request_no in trade.refunds
            if not replay:
                if trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                    raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
                if trade.refunded + Decimal(amount) > Decimal(trade.total_amount):
                    raise GatewayError("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
                trade.refunds[request_no] = f"{Decimal(amount):.2f}"
                if trade.refunded == Decimal(trade.total_amount):
                    trade.status = "TRADE_CLOSED"  # refunded in full
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "sbx***@sandbox.com",
            # "Y" when this call moved money; a repeated out_request_no answers "N".
            "fund_change": "N" if replay else "Y",
            "refund_fee": f"{trade.refunded:.2f}",
            "gmt_refund_pay": _now(),
            "buyer_user_id": self.buyer_id,
        }

    def fail_next(
        self, code: str = "20000", sub_code: str = "isp.unknow-error", sub_msg: str = "系统繁忙"
    ) -> None:
        """Make the next API call (query, close or refund) answer with this error."""
        self._faults.append(GatewayError(code, sub_code, sub_msg))

    # -- paying and notifying ----------------------------------------------------------------

    def pay(self, out_trade_no: str, *, notify: bool = True) -> Trade:
        """The buyer confirms in the cashier: the trade is paid, then notified (§4)."""
        with self._lock:
            trade = self.find({"out_trade_no": out_trade_no})
            if trade.status != "WAIT_BUYER_PAY":
                raise GatewayError("40004", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.time_expire is not None and datetime.now(GMT8) > trade.time_expire:
                trade.status = "TRADE_CLOSED"
                raise GatewayError("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭 (expired)")
            trade.status = "TRADE_SUCCESS"
            trade.gmt_payment = _now()
            trade.notify_id = secrets.token_hex(16)
        if notify:
            # The real notify is asynchronous; sending it before the browser is redirected
            # keeps tests deterministic without changing what the shop receives.
            self.send_notify(out_trade_no, attempts=NOTIFY_ATTEMPTS)
        return trade

    def notify_params(self, out_trade_no: str) -> dict[str, str]:
        """The signed fields of the ``trade_status_sync`` notify for the trade as it is now."""
        trade = self.find({"out_trade_no": out_trade_no})
        paid = trade.total_amount if trade.gmt_payment else "0.00"
        fields = {
            "notify_time": _now(),
            "notify_type": "trade_status_sync",
            "notify_id": trade.notify_id or secrets.token_hex(16),
            "app_id": self.keys.app_id,
            "auth_app_id": self.keys.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": self.buyer_id,
            "buyer_logon_id": "sbx***@sandbox.com",
            "seller_id": self.keys.seller_id,
            "seller_email": "sandbox-seller@example.com",
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "receipt_amount": paid,
            "invoice_amount": paid,
            "buyer_pay_amount": paid,
            "point_amount": "0.00",
            "subject": trade.subject,
            "gmt_create": trade.gmt_create,
            "gmt_payment": trade.gmt_payment,
            "fund_bill_list": json.dumps(
                [{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
            ),
        }
        return sign_callback(fields, self.keys.alipay_private_key)

    def send_notify(
        self, out_trade_no: str, *, duplicate: int = 1, attempts: int = 1
    ) -> list[tuple[int, str]]:
        """POST the notify ``duplicate`` times (each retried up to ``attempts`` times until
        the reply is exactly ``success``); returns the last reply of each delivery."""
        trade = self.find({"out_trade_no": out_trade_no})
        host = urlsplit(trade.notify_url).hostname
        if host not in LOOPBACK:
            raise ValueError(f"the sandbox only notifies loopback URLs, not {host!r}")
        replies = []
        with requests.Session() as session:
            session.trust_env = False  # no proxy between two loopback sockets
            for _ in range(duplicate):
                body = urlencode(self.notify_params(out_trade_no), encoding="utf-8")
                for attempt in range(attempts):
                    reply = self._post(session, trade, body)
                    if reply[1] == "success" or attempt == attempts - 1:
                        break
                    time.sleep(0.05 * (attempt + 1))  # the real schedule is 4m, 10m, ...
                replies.append(reply)
        return replies

    def _post(self, session: requests.Session, trade: Trade, body: str) -> tuple[int, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        try:
            response = session.post(trade.notify_url, data=body, headers=headers, timeout=5)
            reply = (response.status_code, response.text)
        except requests.RequestException:
            reply = (0, "")
        with self._lock:
            self.deliveries.append((trade.out_trade_no, *reply))
        return reply

    def return_params(self, trade: Trade) -> dict[str, str]:
        """The signed query string the buyer's browser brings back to ``return_url``."""
        fields = {
            "app_id": self.keys.app_id,
            "auth_app_id": self.keys.app_id,
            "charset": "utf-8",
            "method": "alipay.trade.wap.pay.return",
            "out_trade_no": trade.out_trade_no,
            "seller_id": self.keys.seller_id,
            "timestamp": _now(),
            "total_amount": trade.total_amount,
            "trade_no": trade.trade_no,
            "version": "1.0",
        }
        return sign_callback(fields, self.keys.alipay_private_key)

    # -- HTTP --------------------------------------------------------------------------------

    def api_response(self, method: str, payload: dict[str, Any]) -> Response:
        """``{"<method>_response":{...},"sign":"..."}``, signed over the member's exact text."""
        member = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        sign = rsa2_sign(member, self.keys.alipay_private_key)
        name = method.replace(".", "_") + "_response"
        text = f'{{"{name}":{member},"sign":"{sign}"}}'
        return Response(text, content_type="text/html;charset=utf-8")


def biz_content(params: dict[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise GatewayError("40004", "ACQ.INVALID_PARAMETER", "biz_content无效")
    return biz
