"""What the sandbox gateway puts on the wire: JSON bytes, signed headers and notifies.

Written from the spec (PROTOCOLS §2.3), apart from the client's code in
:mod:`koudai_flask.payments.wechatpay`, so a mistake on one side fails against the other.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from koudai_flask.connectors.sandbox.wechatpay.keys import random_text

SCHEME = "WECHATPAY2-SHA256-RSA2048"
CHINA = ZoneInfo("Asia/Shanghai")
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"


def now_text() -> str:
    return datetime.now(CHINA).isoformat(timespec="seconds")  # 2015-05-20T13:29:35+08:00


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(key: rsa.RSAPrivateKey, *lines: str | bytes) -> str:
    """SHA256withRSA over the lines, each ending in a newline, Base64-encoded."""
    message = b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def signed_headers(
    key: rsa.RSAPrivateKey,
    serial: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    signtest: bool = False,
) -> dict[str, str]:
    """``Wechatpay-*`` headers over ``TIMESTAMP\\nNONCE\\nBODY\\n``, as on answers and notifies."""
    ts, nonce = str(int(time.time()) if timestamp is None else timestamp), random_text(32)
    signature = sign(key, ts, nonce, body)
    if signtest:  # deliberate probe traffic: the merchant must refuse it
        signature = SIGNTEST_PREFIX + signature
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEME,
        "Request-ID": uuid.uuid4().hex.upper(),
    }


class NotifySender:
    """Encrypts, signs and POSTs notifies; retries a delivery that was not answered 2xx."""

    def __init__(
        self,
        *,
        apiv3_key: bytes,
        platform_key: rsa.RSAPrivateKey,
        platform_serial: str,
        tries: int,
        interval: float,
        timeout: float,
    ) -> None:
        self.apiv3_key = apiv3_key
        self.platform_key, self.platform_serial = platform_key, platform_serial
        # The real schedule is 15s/15s/30s/3m/10m/... over a day (§2.3); here it is short.
        self.tries, self.interval = tries, interval
        self.timeout = timeout  # the merchant must answer within 5 s
        self.deliveries: list[tuple[str, int | None]] = []  # (out_trade_no, HTTP status)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def envelope(self, plaintext: dict[str, Any], *, event_type: str, summary: str) -> bytes:
        """The notify body: the resource AES-256-GCM encrypted with the APIv3 key."""
        original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
        nonce = random_text(12)  # 12 characters, used as their UTF-8 bytes
        sealed = AESGCM(self.apiv3_key).encrypt(
            nonce.encode(), dumps(plaintext), original_type.encode()
        )
        return dumps(
            {
                "id": str(uuid.uuid4()),
                "create_time": now_text(),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": summary,
                "resource": {
                    "original_type": original_type,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode(),
                    "associated_data": original_type,
                    "nonce": nonce,
                },
            }
        )

    def headers(
        self, body: bytes, *, timestamp: int | None = None, signtest: bool = False
    ) -> dict[str, str]:
        headers = signed_headers(
            self.platform_key, self.platform_serial, body, timestamp=timestamp, signtest=signtest
        )
        headers.update({"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"})
        return headers

    def post(
        self, out_trade_no: str, url: str, body: bytes, *, signtest: bool = False
    ) -> int | None:
        """One delivery, freshly signed; the HTTP status, or None when nobody answered."""
        try:
            with requests.Session() as session:
                session.trust_env = False  # loopback only: never through a proxy
                response = session.post(
                    url,
                    data=body,
                    headers=self.headers(body, signtest=signtest),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
                status: int | None = response.status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self.deliveries.append((out_trade_no, status))
        return status

    def deliver(self, out_trade_no: str, url: str, body: bytes) -> None:
        """Deliver in the background, retrying until answered 2xx or out of tries."""

        def run() -> None:
            for attempt in range(self.tries):
                if attempt:
                    time.sleep(self.interval)
                status = self.post(out_trade_no, url, body)
                if status is not None and 200 <= status < 300:
                    return

        thread = threading.Thread(target=run, name=f"wechatpay-notify-{out_trade_no}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 10.0) -> None:
        """Block until every background delivery has finished (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
