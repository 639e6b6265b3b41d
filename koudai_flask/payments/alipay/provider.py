"""The Alipay provider: wap/page pay, trade query, close and refund, notify verification.

It speaks the open-platform gateway protocol (PROTOCOLS.md §4) and nothing else: requests
are signed with the app's private key, responses and notifies are verified with the Alipay
public key, and what it learns comes back as the plain values of :mod:`..base`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests

from koudai_flask.errors import SignatureError, ValidationError
from koudai_flask.payments.alipay import signing
from koudai_flask.payments.base import (
    CHINA,
    PaymentAction,
    PaymentGatewayError,
    PaymentNotice,
    PaymentRequest,
    PaymentStatus,
    RefundResult,
)

SUCCESS = "10000"
# 20000 is "service currently unavailable"; ACQ.SYSTEM_ERROR asks the caller to try again.
RETRYABLE_CODES = frozenset({"20000"})
RETRYABLE_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error"})
TRADE_STATES = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "paid",
    "TRADE_FINISHED": "paid",  # paid, and past the refund window
    "TRADE_CLOSED": "closed",  # unpaid and closed, or paid and refunded in full
}
PAID_STATES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
NOTIFY_FIELDS = ("app_id", "out_trade_no", "trade_no", "total_amount", "trade_status")
SUBJECT_LIMIT = 256  # characters, per the wap.pay / page.pay biz_content table


class AlipayProvider:
    """One Alipay application (``app_id``) and the keys that go with it."""

    name = "alipay"

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app_id: str = settings["app_id"]
        self.gateway_url: str = settings["gateway_url"]
        self.timeout: float = settings["timeout"]
        self.seller_id: str | None = settings.get("seller_id")
        self._private_key = signing.load_private_key(settings["app_private_key"])
        self._public_key = signing.load_public_key(settings["alipay_public_key"])
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- requests ----------------------------------------------------------------------------

    def signed_params(
        self, method: str, biz_content: Mapping[str, Any], **extra: str
    ) -> dict[str, str]:
        """The common parameters of ``method`` plus ``extra``, signed (§4 "Request sign")."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": signing.gateway_time(self._clock()),
            "version": "1.0",
            "biz_content": signing.compact_json(dict(biz_content)),
        }
        params.update({key: value for key, value in extra.items() if value})
        params["sign"] = signing.sign(signing.request_sign_content(params), self._private_key)
        return params

    def start(self, request: PaymentRequest) -> PaymentAction:
        """A signed cashier URL: the buyer's browser goes there to pay (no server call)."""
        _check_amount(request.amount)
        biz: dict[str, Any] = {
            "out_trade_no": request.order_number,
            "total_amount": signing.yuan(request.amount),
            "subject": request.description[:SUBJECT_LIMIT] or request.order_number,
        }
        if request.expires_at is not None:
            # Absolute closing time, "yyyy-MM-dd HH:mm:ss" in Beijing time (wap.pay/page.pay).
            biz["time_expire"] = request.expires_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        if request.scene == "page":
            method = "alipay.trade.page.pay"
            biz["product_code"] = "FAST_INSTANT_TRADE_PAY"
        else:  # h5, and jsapi (there is no Alipay JSAPI in a foreign webview): the wap cashier
            method = "alipay.trade.wap.pay"
            # The official code; python-alipay-sdk's default "QUICK_WAP_PAY" is wrong (§4).
            biz["product_code"] = "QUICK_WAP_WAY"
            biz["quit_url"] = request.return_url
        params = self.signed_params(
            method, biz, notify_url=request.notify_url, return_url=request.return_url
        )
        separator = "&" if "?" in self.gateway_url else "?"
        return PaymentAction(kind="redirect", url=self.gateway_url + separator + urlencode(params))

    def query(self, order_number: str) -> PaymentStatus:
        reply = self.call("alipay.trade.query", {"out_trade_no": order_number})
        status = reply.get("trade_status", "")
        if status not in TRADE_STATES:
            raise PaymentGatewayError(f"alipay.trade.query: unknown trade_status {status!r}")
        return PaymentStatus(
            order_number=order_number,
            state=TRADE_STATES[status],
            transaction_id=reply.get("trade_no"),
            amount=_fen(reply["total_amount"]) if reply.get("total_amount") else None,
        )

    def close(self, order_number: str) -> None:
        try:
            self.call("alipay.trade.close", {"out_trade_no": order_number})
        except PaymentGatewayError as exc:
            # A wap/page trade exists at Alipay only once the buyer opened the cashier and
            # logged in; an order nobody tried to pay has nothing to close.
            if exc.code != "ACQ.TRADE_NOT_EXIST":
                raise

    def refund(
        self, order_number: str, *, refund_no: str, amount: int, total: int, reason: str = ""
    ) -> RefundResult:
        """Refund ``amount`` fen; ``refund_no`` is ``out_request_no``, so a retry is one refund.

        Alipay refunds against the trade, so ``total`` is only checked, never sent.
        """
        _check_amount(amount)
        if amount > total:
            raise ValidationError(f"refund of {amount} fen exceeds the order total {total}")
        biz = {
            "out_trade_no": order_number,
            "refund_amount": signing.yuan(amount),
            "out_request_no": refund_no,
        }
        if reason:
            biz["refund_reason"] = reason[:256]
        self.call("alipay.trade.refund", biz)
        # code 10000 is the refund accepted; fund_change "N" only marks a replay of the same
        # out_request_no, which is the same refund.
        return RefundResult(refund_id=refund_no, status="success")

    def call(self, method: str, biz_content: Mapping[str, Any]) -> dict[str, Any]:
        """POST one API call; return its verified ``<method>_response`` object.

        Like the official SDKs, the common parameters go in the query string (so the gateway
        knows the charset before it reads the body) and ``biz_content`` in the form body.
        """
        params = self.signed_params(method, biz_content)
        body = {"biz_content": params.pop("biz_content")}
        try:
            reply = requests.post(
                self.gateway_url,
                params=params,
                data=body,
                timeout=self.timeout,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        except requests.RequestException as exc:
            raise PaymentGatewayError(
                f"{method}: the Alipay gateway could not be reached ({type(exc).__name__})",
                code="unreachable",
                retryable=True,
            ) from None
        if reply.status_code != 200:
            raise PaymentGatewayError(
                f"{method}: the Alipay gateway answered HTTP {reply.status_code}",
                code=f"http_{reply.status_code}",
                retryable=reply.status_code >= 500,
            )
        # We asked for charset=utf-8; the Content-Type header is not to be trusted for it.
        return self.read_response(method, reply.content.decode("utf-8", errors="replace"))

    def read_response(self, method: str, text: str) -> dict[str, Any]:
        """Verify a sync response over the exact text of its member and check its code."""
        try:
            name, content, sign = signing.response_member(
                text, method.replace(".", "_") + "_response"
            )
        except ValueError as exc:
            raise PaymentGatewayError(f"{method}: unreadable response ({exc})") from None
        value: dict[str, Any] = json.loads(content)
        code = str(value.get("code", ""))
        if sign is not None:
            if not self._verify_response(content, sign):
                raise SignatureError(f"{method}: response signature does not verify")
        elif code == SUCCESS:
            raise SignatureError(f"{method}: successful response without a signature")
        # else: the official SDKs accept an unsigned *error* (the gateway could not tell who
        # was asking, so it does not sign); it carries no data we act on.
        if name != method.replace(".", "_") + "_response" or code != SUCCESS:
            sub_code = str(value.get("sub_code", ""))
            detail = f"{code} {value.get('msg', '')} {sub_code} {value.get('sub_msg', '')}"
            raise PaymentGatewayError(
                f"{method}: {detail.strip()}",
                code=sub_code or code,
                retryable=code in RETRYABLE_CODES or sub_code in RETRYABLE_SUB_CODES,
            )
        return value

    def _verify_response(self, content: str, sign: str) -> bool:
        if signing.verify(content, sign, self._public_key):
            return True
        # The official SDKs retry with "\/" unescaped: the gateway signs some bodies before
        # its JSON writer escapes slashes.
        return "\\/" in content and signing.verify(
            content.replace("\\/", "/"), sign, self._public_key
        )

    # -- callbacks ---------------------------------------------------------------------------

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Verify an async notify (form-encoded POST) and read the payment out of it."""
        params = self.verify_callback(_form_fields(headers, body), what="notify")
        missing = [field for field in NOTIFY_FIELDS if not params.get(field)]
        if missing:
            raise ValidationError(f"alipay notify without {', '.join(missing)}")
        try:
            amount = signing.fen(params["total_amount"])
        except ValueError as exc:
            raise ValidationError(f"alipay notify: {exc}") from None
        return PaymentNotice(
            provider=self.name,
            order_number=params["out_trade_no"],
            transaction_id=params["trade_no"],
            amount=amount,
            paid=params["trade_status"] in PAID_STATES,
            raw=params,
        )

    def verify_return(self, params: Mapping[str, str]) -> dict[str, str]:
        """Verify the signed query string of the buyer's return from the cashier.

        It proves where the buyer came from, not that the order is paid: the notify (or a
        query) says that.
        """
        return self.verify_callback(dict(params), what="return")

    def verify_callback(self, params: dict[str, str], *, what: str) -> dict[str, str]:
        """Check the signature, then that the message is for this app (and seller)."""
        sign = params.get("sign", "")
        if not sign:
            raise SignatureError(f"alipay {what} without a sign")
        if params.get("sign_type", "RSA2") != "RSA2":
            raise SignatureError(f"alipay {what} with sign_type {params['sign_type'][:8]!r}")
        if not signing.verify(signing.callback_sign_content(params), sign, self._public_key):
            raise SignatureError(f"alipay {what} signature does not verify")
        if params.get("app_id") != self.app_id:
            raise ValidationError(
                f"alipay {what} for another app_id {params.get('app_id', '')[:32]!r}"
            )
        if self.seller_id is not None and params.get("seller_id") != self.seller_id:
            raise ValidationError(
                f"alipay {what} for another seller {params.get('seller_id', '')[:32]!r}"
            )
        return params


def _form_fields(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Decode a form body in the charset it names (``charset`` field, else the header)."""
    first_pass = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    charset = first_pass.get("charset") or _header_charset(headers) or "utf-8"
    try:
        pairs = parse_qsl(
            body.decode(charset), keep_blank_values=True, encoding=charset, errors="strict"
        )
    except (LookupError, UnicodeDecodeError):
        raise ValidationError(f"alipay notify in an unreadable charset {charset[:20]!r}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            # One value is signed and another could be acted on: refuse the ambiguity.
            raise ValidationError(f"alipay notify repeats the field {key!r}")
        fields[key] = value
    return fields


def _header_charset(headers: Mapping[str, str]) -> str | None:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return None


def _fen(amount: str) -> int:
    try:
        return signing.fen(amount)
    except ValueError as exc:
        raise PaymentGatewayError(str(exc)) from None


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError(f"amount must be a positive integer of fen, got {amount!r}")
