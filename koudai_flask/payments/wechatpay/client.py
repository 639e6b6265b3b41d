"""The WeChat Pay API v3 HTTP adapter: signs each request, verifies each response.

It speaks the wire protocol and nothing else (PROTOCOLS §2.1–§2.3): JSON in, JSON out,
the exact bytes it signed are the bytes it sends, and a response is trusted only after its
``Wechatpay-*`` signature verifies with the platform key named by ``Wechatpay-Serial``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from koudai_flask.errors import SignatureError
from koudai_flask.payments.base import PaymentGatewayError
from koudai_flask.payments.wechatpay import crypto

# Codes the gateway documents as "try again later", whatever the HTTP status says.
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED"})


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: what we sign is what we send, byte for byte."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WechatPayClient:
    """Signed JSON calls to one merchant's WeChat Pay gateway."""

    def __init__(
        self,
        *,
        mchid: str,
        merchant_key: rsa.RSAPrivateKey,
        merchant_serial_no: str,
        platform_keys: Mapping[str, rsa.RSAPublicKey],
        gateway_url: str,
        timeout: float,
        user_agent: str,
    ) -> None:
        self.mchid = mchid
        self.merchant_key = merchant_key
        self.merchant_serial_no = merchant_serial_no
        self.platform_keys = dict(platform_keys)
        self.gateway_url = gateway_url
        self.timeout = timeout
        self.session = requests.Session()
        # The gateway answers "Http头缺少Accept或User-Agent" without these (§2.1).
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send one request; return ``(status, json)`` of a 2xx answer or raise.

        Gateway refusals raise :class:`PaymentGatewayError`, a response whose signature does
        not verify raises :class:`SignatureError`.
        """
        # The signed URL is the path plus the query string exactly as sent (§2.1).
        canonical_url = path + ("?" + urlencode(query) if query else "")
        data = dumps(body) if body is not None else b""
        headers = {
            "Authorization": crypto.authorization(
                mchid=self.mchid,
                serial_no=self.merchant_serial_no,
                key=self.merchant_key,
                method=method,
                canonical_url=canonical_url,
                body=data,
            )
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method,
                self.gateway_url + canonical_url,
                data=data or None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise PaymentGatewayError(
                f"WeChat Pay gateway unreachable ({type(exc).__name__})", retryable=True
            ) from None
        self._verify(response)
        if response.status_code >= 400:
            raise self._error(response)
        if not response.content:
            return response.status_code, {}
        payload = self._json(response)
        if payload is None:
            raise PaymentGatewayError(
                f"WeChat Pay answered {response.status_code} with a body that is not JSON"
            )
        return response.status_code, payload

    def _verify(self, response: requests.Response) -> None:
        # A success without a valid signature must be treated as forged (doc 4012354982).
        # Error answers are checked when signed; unsigned ones can only make us give up.
        signed = "Wechatpay-Signature" in response.headers
        if response.status_code < 300 or signed:
            try:
                crypto.verify_wechatpay_signature(
                    response.headers, response.content, self.platform_keys
                )
            except SignatureError as exc:
                raise SignatureError(
                    f"WeChat Pay response {response.status_code}: {exc.message}"
                ) from None

    def _error(self, response: requests.Response) -> PaymentGatewayError:
        payload = self._json(response) or {}
        code = str(payload.get("code") or "")
        message = str(payload.get("message") or response.reason or "")
        label = f"{response.status_code} {code}" if code else str(response.status_code)
        return PaymentGatewayError(
            f"WeChat Pay {label}: {message}",
            code=code,
            retryable=response.status_code >= 500 or code in RETRYABLE_CODES,
        )

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any] | None:
        try:
            payload = response.json()
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None
