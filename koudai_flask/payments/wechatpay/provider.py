"""The WeChat Pay API v3 payment provider: JSAPI and H5 payments, notify, query, close, refund.

It turns the provider interface of :mod:`koudai_flask.payments.base` into the v3 endpoints of
PROTOCOLS §2.2 through :class:`WechatPayClient`, and turns a verified, decrypted notify into a
:class:`PaymentNotice`. It never touches an order.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from koudai_flask.errors import ValidationError
from koudai_flask.payments.base import (
    CHINA,
    PaymentAction,
    PaymentGatewayError,
    PaymentNotice,
    PaymentRequest,
    PaymentStatus,
    RefundResult,
)
from koudai_flask.payments.wechatpay import crypto
from koudai_flask.payments.wechatpay.client import WechatPayClient

# trade_state of the query API and the notify -> PaymentStatus.state
TRADE_STATES = {
    "SUCCESS": "paid",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "REFUND": "refunded",
    "PAYERROR": "failed",
}
REFUND_STATES = {"SUCCESS": "success", "PROCESSING": "processing"}
# The gateway limits `description` to 127 characters and a refund `reason` to 80.
DESCRIPTION_MAX = 127
REASON_MAX = 80


class WechatPayProvider:
    """One merchant account (``KOUDAI_WECHATPAY``) on WeChat Pay API v3."""

    name = "wechatpay"

    def __init__(self, settings: dict[str, Any], *, user_agent: str) -> None:
        self.mchid: str = settings["mchid"]
        self.appid: str = settings["appid"]
        self.apiv3_key: bytes = settings["apiv3_key"].encode("utf-8")
        self.merchant_key = crypto.load_private_key(settings["merchant_private_key"])
        platform_keys = {
            serial: crypto.load_public_key(pem)
            for serial, pem in settings["platform_public_keys"].items()
        }
        self.platform_keys = platform_keys
        self.client = WechatPayClient(
            mchid=self.mchid,
            merchant_key=self.merchant_key,
            merchant_serial_no=settings["merchant_serial_no"],
            platform_keys=platform_keys,
            gateway_url=settings["gateway_url"],
            timeout=settings["timeout"],
            user_agent=user_agent,
        )

    # -- paying --------------------------------------------------------------------------

    def start(self, request: PaymentRequest) -> PaymentAction:
        """JSAPI inside WeChat (needs the buyer's openid); H5 in any other browser."""
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": request.description[:DESCRIPTION_MAX],
            "out_trade_no": request.order_number,
            "notify_url": request.notify_url,
            "amount": {"total": request.amount, "currency": "CNY"},
        }
        if request.expires_at is not None:
            # RFC 3339 with the offset (§2.2): "2026-11-25T20:30:00+08:00".
            body["time_expire"] = request.expires_at.astimezone(CHINA).isoformat(timespec="seconds")
        if request.scene == "jsapi":
            if not request.openid:
                raise ValidationError("a WeChat JSAPI payment needs the buyer's openid")
            body["payer"] = {"openid": request.openid}
            _, answer = self.client.call("POST", "/v3/pay/transactions/jsapi", body=body)
            return PaymentAction(
                kind="jsapi", params=self.jsapi_params(_field(answer, "prepay_id"))
            )
        body["scene_info"] = {
            "payer_client_ip": request.client_ip,
            "h5_info": {"type": "Wap"},
        }
        _, answer = self.client.call("POST", "/v3/pay/transactions/h5", body=body)
        # The cashier returns the buyer to redirect_url, appended URL-encoded (§2.2).
        url = _field(answer, "h5_url") + "&redirect_url=" + quote(request.return_url, safe="")
        return PaymentAction(kind="redirect", url=url)

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What ``WeixinJSBridge.invoke("getBrandWCPayRequest", ...)`` takes (§2.2)."""
        timestamp, nonce = str(int(time.time())), crypto.new_nonce()
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": crypto.pay_sign(self.merchant_key, self.appid, timestamp, nonce, package),
        }

    # -- notify --------------------------------------------------------------------------

    def parse_notify(self, headers: dict[str, str], body: bytes) -> PaymentNotice:
        """Verify, decrypt and check a notify (§2.3); SignatureError or ValidationError if bad."""
        crypto.verify_wechatpay_signature(headers, body, self.platform_keys)
        envelope = _object(body, "notify body")
        resource = envelope.get("resource")
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ValidationError("WeChat Pay notify without an AEAD_AES_256_GCM resource")
        try:
            plaintext = crypto.decrypt_resource(
                self.apiv3_key,
                str(resource["nonce"]),
                str(resource["ciphertext"]),
                str(resource.get("associated_data") or ""),
            )
        except KeyError as exc:
            raise ValidationError(f"WeChat Pay notify resource lacks {exc.args[0]}") from None
        data = _object(plaintext, "notify resource")
        event_type = str(envelope.get("event_type") or "")
        if data.get("mchid") != self.mchid:
            raise ValidationError(f"WeChat Pay notify for another mchid {data.get('mchid')!r}")
        # Refund resources carry no appid; payment resources must carry ours.
        if (event_type.startswith("TRANSACTION.") or "appid" in data) and data.get(
            "appid"
        ) != self.appid:
            raise ValidationError(f"WeChat Pay notify for another appid {data.get('appid')!r}")
        total = _total(data)
        if not data.get("out_trade_no") or not isinstance(total, int) or isinstance(total, bool):
            raise ValidationError("WeChat Pay notify without out_trade_no or amount.total")
        paid = event_type == "TRANSACTION.SUCCESS" and data.get("trade_state") == "SUCCESS"
        return PaymentNotice(
            provider=self.name,
            order_number=str(data["out_trade_no"]),
            transaction_id=str(data.get("transaction_id") or ""),
            amount=total,
            paid=paid,
            raw=data,
        )

    # -- after the fact ------------------------------------------------------------------

    def query(self, order_number: str) -> PaymentStatus:
        _, answer = self.client.call(
            "GET",
            f"/v3/pay/transactions/out-trade-no/{quote(order_number, safe='')}",
            query={"mchid": self.mchid},
        )
        trade_state = str(answer.get("trade_state") or "")
        if trade_state not in TRADE_STATES:
            raise PaymentGatewayError(
                f"WeChat Pay answered an unknown trade_state {trade_state!r}",
                code="UNKNOWN_TRADE_STATE",
            )
        total = _total(answer)
        return PaymentStatus(
            order_number=order_number,
            state=TRADE_STATES[trade_state],
            transaction_id=answer.get("transaction_id") or None,
            amount=total if isinstance(total, int) else None,
        )

    def close(self, order_number: str) -> None:
        """Close an unpaid payment so it can no longer be paid; the gateway answers 204."""
        status, _ = self.client.call(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{quote(order_number, safe='')}/close",
            body={"mchid": self.mchid},
        )
        if status != 204:
            raise PaymentGatewayError(f"WeChat Pay answered {status} to close, expected 204")

    def refund(
        self, order_number: str, *, refund_no: str, amount: int, total: int, reason: str = ""
    ) -> RefundResult:
        body: dict[str, Any] = {"out_trade_no": order_number, "out_refund_no": refund_no}
        if reason:
            body["reason"] = reason[:REASON_MAX]
        body["amount"] = {"refund": amount, "total": total, "currency": "CNY"}
        _, answer = self.client.call("POST", "/v3/refund/domestic/refunds", body=body)
        return RefundResult(
            refund_id=_field(answer, "refund_id"),
            status=REFUND_STATES.get(str(answer.get("status")), "failed"),
        )


def _field(answer: dict[str, Any], name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not value:
        raise PaymentGatewayError(f"WeChat Pay answer lacks {name}")
    return value


def _total(data: dict[str, Any]) -> Any:
    amount = data.get("amount")
    return amount.get("total") if isinstance(amount, dict) else None


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValidationError(f"WeChat Pay {what} is not JSON") from None
    if not isinstance(data, dict):
        raise ValidationError(f"WeChat Pay {what} is not a JSON object")
    return data
