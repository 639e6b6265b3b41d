"""WeChat's side of the Official Account server protocol (PROTOCOLS §3.1, §8 item 3).

:class:`OAPusher` does what WeChat's servers do to a merchant's server: the URL check
(``GET ?signature&timestamp&nonce&echostr``) and pushes of messages and events as signed
XML, in plain or safe mode, decrypting a safe-mode reply as WeChat would::

    pusher = OAPusher(url, token="tok3n", appid="wx...", encoding_aes_key=None)
    reply = pusher.text("oOpenId", "hello")          # the passive reply, parsed, or None
    pusher.event("oOpenId", "subscribe", "qrscene_flyer")
    pusher.verify_url()                              # the echoed echostr
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from koudai_flask.connectors.wechat.oa_crypto import MessageCrypto, sha1_signature
from koudai_flask.connectors.wechat.oa_messages import encrypted_part, parse_xml, push_xml


@dataclass(frozen=True)
class PushResult:
    status: int
    body: str
    reply: dict[str, str] | None  # the passive reply's fields (decrypted), if any


@dataclass
class OAPusher:
    """Signs and posts pushes to ``url`` (the shop's ``<hooks prefix>/wechat/oa``)."""

    url: str
    token: str = field(repr=False)
    appid: str = "wx5andb0x0000000a"
    encoding_aes_key: str | None = field(default=None, repr=False)
    account: str = "gh_5andb0x00001"  # the Official Account's own id (ToUserName)
    timeout: float = 10.0
    _msg_ids: Any = field(default_factory=lambda: itertools.count(6054768590064713728))

    @property
    def crypto(self) -> MessageCrypto | None:
        if self.encoding_aes_key is None:
            return None
        return MessageCrypto(self.token, self.encoding_aes_key, self.appid)

    def signed_query(
        self, *, timestamp: str | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**9))
        return {"signature": sha1_signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}

    def verify_url(self, echostr: str = "echo-5andb0x") -> requests.Response:
        return requests.get(
            self.url, params={**self.signed_query(), "echostr": echostr}, timeout=self.timeout
        )

    def message_fields(self, openid: str, msg_type: str, **values: Any) -> dict[str, Any]:
        return {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": int(values.pop("CreateTime", time.time())),
            "MsgType": msg_type,
            **values,
        }

    def text(self, openid: str, content: str, *, msg_id: int | None = None) -> PushResult:
        msg_id = next(self._msg_ids) if msg_id is None else msg_id
        return self.push(self.message_fields(openid, "text", Content=content, MsgId=msg_id))

    def event(self, openid: str, event: str, key: str | None = None, **values: Any) -> PushResult:
        extra: dict[str, Any] = {"Event": event, **values}
        if key is not None:
            extra["EventKey"] = key
        return self.push(self.message_fields(openid, "event", **extra))

    def push(self, fields: dict[str, Any], **signing: str) -> PushResult:
        """POST one push; the same ``fields`` posted again is what a WeChat retry is."""
        return self.post_xml(push_xml(fields), **signing)

    def post_xml(self, xml: str, **signing: str) -> PushResult:
        query = self.signed_query(**signing)
        crypto = self.crypto
        body = xml
        if crypto is not None:
            encrypted = crypto.encrypt(xml)
            query["encrypt_type"] = "aes"
            query["msg_signature"] = crypto.msg_signature(
                query["timestamp"], query["nonce"], encrypted
            )
            body = push_xml({"ToUserName": self.account, "Encrypt": encrypted})
        response = requests.post(
            self.url,
            params=query,
            data=body.encode(),
            headers={"Content-Type": "text/xml"},
            timeout=self.timeout,
        )
        return PushResult(response.status_code, response.text, self._reply(response.text))

    def _reply(self, text: str) -> dict[str, str] | None:
        if not text or text == "success" or not text.startswith("<xml>"):
            return None
        crypto = self.crypto
        if crypto is None:
            return parse_xml(text)
        envelope = parse_xml(text)
        encrypted = encrypted_part(text)
        # WeChat checks the reply's own signature before it reads it.
        crypto.check_msg_signature(
            envelope.get("MsgSignature", ""),
            envelope.get("TimeStamp", ""),
            envelope.get("Nonce", ""),
            encrypted,
        )
        return parse_xml(crypto.decrypt(encrypted))
