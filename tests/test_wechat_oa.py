"""The WeChat Official Account server: signatures, safe mode, pushes and their retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select

from koudai_flask.connectors.sandbox.loopback import LoopbackServer
from koudai_flask.connectors.sandbox.wechat_push import OAPusher
from koudai_flask.connectors.wechat.oa_crypto import (
    MessageCrypto,
    check_signature,
    decode_aes_key,
    sha1_signature,
)
from koudai_flask.connectors.wechat.oa_messages import (
    MalformedPush,
    encrypted_part,
    parse_message,
    parse_xml,
    text_reply,
)
from koudai_flask.errors import ConfigError, SignatureError
from koudai_flask.extension import get_state
from koudai_flask.models import (
    CustomerIdentity,
    CustomerTag,
    Tag,
    TagHistory,
    WechatFollower,
    WechatMessage,
)
from koudai_flask.services import wechat_oa

TOKEN = "tok3nForTests"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APPID = "wx5andb0x0000000a"

# PROTOCOLS §3.1 [V]: the published safe-mode vector (WeCom variant, same algorithm).
VECTOR_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHC"
    "rsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpX"
    "aG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQi"
    "MS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQi"
    "pvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
VECTOR_XML = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    f"<Encrypt><![CDATA[{VECTOR_ENCRYPT}]]></Encrypt>\n"
    "<AgentID><![CDATA[1]]></AgentID>\n</xml>"
)


# -- the published vectors ---------------------------------------------------------------


def test_url_signature_vector():
    assert sha1_signature("test", "1410685589", "test") == (
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    )
    check_signature("test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")
    # Upper-case hex is the same signature; any other value is not.
    check_signature("test", "F21891DE399B4E33A1A93C9A7B8A8FFFB5A443FF", "1410685589", "test")
    with pytest.raises(SignatureError):
        check_signature("test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", "1410685589", "test")
    with pytest.raises(SignatureError):
        check_signature("other", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")
    with pytest.raises(SignatureError):
        check_signature("test", "", "1410685589", "test")


def test_safe_mode_decrypt_vector():
    crypto = MessageCrypto("123456", AES_KEY, "wx49f0ab532d5d035a")
    encrypted = encrypted_part(VECTOR_XML)
    assert encrypted == VECTOR_ENCRYPT
    assert crypto.msg_signature("1411525903", "461056294", encrypted) == (
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
    )
    crypto.check_msg_signature(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", encrypted
    )
    message = parse_message(crypto.decrypt(encrypted))
    assert (message.content, message.from_user, message.msg_id) == (
        "test",
        "messense",
        "4363689963896700987",
    )
    assert message.dedupe_key == "msg:4363689963896700987"


def test_safe_mode_refuses_another_appid_a_wrong_key_and_a_forged_signature():
    encrypted = VECTOR_ENCRYPT
    with pytest.raises(SignatureError, match="another appid"):
        MessageCrypto("123456", AES_KEY, "wx0000000000000000").decrypt(encrypted)
    other_key = "A" * 43
    with pytest.raises(SignatureError):
        MessageCrypto("123456", other_key, "wx49f0ab532d5d035a").decrypt(encrypted)
    with pytest.raises(SignatureError):
        MessageCrypto("123456", AES_KEY, "wx49f0ab532d5d035a").check_msg_signature(
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525904", "461056294", encrypted
        )
    with pytest.raises(SignatureError):
        MessageCrypto("123456", AES_KEY, "wx49f0ab532d5d035a").decrypt("not base64!")


def test_encrypt_then_decrypt_pads_to_32_bytes_and_keeps_the_layout():
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    for text in ("", "x", "a" * 31, "好" * 40):
        encrypted = crypto.encrypt(text, random_prefix=b"0123456789abcdef")
        import base64

        raw = base64.b64decode(encrypted)
        # 16 random + 4 length + message + appid, padded to a multiple of 32 (never 0 pad).
        assert len(raw) % 32 == 0
        assert len(raw) > 16 + 4 + len(text.encode()) + len(APPID)
        assert crypto.decrypt(encrypted) == text
    assert len(decode_aes_key(AES_KEY)) == 32
    with pytest.raises(ValueError):
        decode_aes_key(AES_KEY[:-1])


def test_push_xml_with_a_dtd_or_entities_is_refused():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Content>&b;</Content></xml>'
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<xml><Content>&x;</Content></xml>"
    )
    for body in (bomb, external, "<xml><unclosed></xml>", "<root/>"):
        with pytest.raises(MalformedPush):
            parse_xml(body)
    with pytest.raises(MalformedPush, match="FromUserName"):
        parse_message("<xml><ToUserName>gh</ToUserName><MsgType>text</MsgType></xml>")


def test_a_passive_reply_keeps_cdata_closing_text_intact():
    message = parse_message(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oBuyer</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
        "<MsgId>1</MsgId></xml>"
    )
    reply = parse_xml(text_reply(message, "a ]]> b <c>", now=5))
    assert reply == {
        "ToUserName": "oBuyer",
        "FromUserName": "gh_1",
        "CreateTime": "5",
        "MsgType": "text",
        "Content": "a ]]> b <c>",
    }


def test_config_refuses_a_bad_token_or_aes_key(make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'cfg.db'}"
    for bad in (
        {"appid": APPID, "token": "x"},
        {"appid": APPID, "token": "has space"},
        {"appid": APPID, "token": TOKEN, "encoding_aes_key": "short"},
        {"token": TOKEN, "encoding_aes_key": AES_KEY},
        {"appid": APPID, "token": TOKEN, "scene_tags": {"flyer": 3}},
    ):
        with pytest.raises(ConfigError) as caught:
            make_app(url, KOUDAI_WECHAT=bad)
        assert AES_KEY not in caught.value.message
        assert TOKEN not in caught.value.message


# -- the endpoint, over HTTP ---------------------------------------------------------------


def oa_settings(**extra: Any) -> dict[str, Any]:
    return {
        "appid": APPID,
        "secret": "s3cret",
        "token": TOKEN,
        "scene_tags": {"flyer": "flyer-2026"},
        **extra,
    }


@pytest.fixture
def served(make_app: Any, database_url: str) -> Iterator[tuple[Flask, str]]:
    app = make_app(database_url, KOUDAI_WECHAT=oa_settings())
    server = LoopbackServer(app)
    yield app, f"{server.url}/shop-hooks/wechat/oa"
    server.stop()


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        session = get_state().session
        try:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)))
        finally:
            session.rollback()


def test_url_verification_echoes_echostr_only_when_signed(served):
    app, url = served
    pusher = OAPusher(url, token=TOKEN, appid=APPID)
    answer = pusher.verify_url("3141592653")
    assert (answer.status_code, answer.text) == (200, "3141592653")
    forged = requests.get(
        url,
        params={"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "e"},
        timeout=10,
    )
    assert forged.status_code == 403
    assert forged.text == "signature does not match"


def test_a_push_with_a_bad_signature_is_403_and_stores_nothing(served):
    app, url = served
    wrong = OAPusher(url, token="notTheToken", appid=APPID)
    result = wrong.text("oBuyer1", "hello")
    assert result.status == 403
    assert count(app, WechatMessage) == 0
    assert count(app, WechatFollower) == 0
    assert count(app, CustomerIdentity, CustomerIdentity.kind == "wechat_openid") == 0


def test_a_text_push_links_a_customer_and_replays_by_msgid_have_one_effect(served):
    app, url = served
    with app.app_context():
        wechat_oa.save_rule(
            None, trigger="keyword", keyword="价格", reply="请看商城", match="contains"
        )
    pusher = OAPusher(url, token=TOKEN, appid=APPID)
    fields = pusher.message_fields(
        "oBuyer1", "text", Content="这个价格多少?", MsgId=6054768590064713001, CreateTime=1700000000
    )
    results = [pusher.push(fields) for _ in range(4)]  # the push and WeChat's 3 retries
    assert {r.status for r in results} == {200}
    replies = [r.reply for r in results]
    assert replies[0] is not None
    assert replies[0]["Content"] == "请看商城"
    assert (replies[0]["ToUserName"], replies[0]["FromUserName"]) == ("oBuyer1", pusher.account)
    assert all(r == replies[0] for r in replies)  # the same answer each time
    assert count(app, WechatMessage, WechatMessage.direction == "in") == 1
    assert count(app, WechatMessage, WechatMessage.direction == "out") == 1
    assert count(app, CustomerIdentity, CustomerIdentity.value == "oBuyer1") == 1
    with app.app_context():
        follower = get_state().session.scalar(select(WechatFollower))
        assert (follower.openid, follower.unread, follower.customer_id is not None) == (
            "oBuyer1",
            1,
            True,
        )
    # A new message (another MsgId) is a new effect, with no rule matched: "success".
    other = pusher.text("oBuyer1", "在吗")
    assert (other.status, other.body, other.reply) == (200, "success", None)
    assert count(app, WechatMessage, WechatMessage.direction == "in") == 2


def test_subscribe_tags_the_customer_and_a_retried_event_counts_once(served):
    app, url = served
    with app.app_context():
        wechat_oa.save_rule(None, trigger="subscribe", keyword="", reply="欢迎关注")
    pusher = OAPusher(url, token=TOKEN, appid=APPID)
    fields = pusher.message_fields(
        "oFan",
        "event",
        Event="subscribe",
        EventKey="qrscene_flyer",
        Ticket="T",
        CreateTime=1700000100,
    )
    first, retry = pusher.push(fields), pusher.push(fields)
    assert first.reply is not None and first.reply["Content"] == "欢迎关注"
    assert retry.reply == first.reply
    assert count(app, WechatMessage, WechatMessage.direction == "in") == 1
    with app.app_context():
        session = get_state().session
        follower = session.scalar(select(WechatFollower))
        assert (follower.subscribed, follower.scene) == (True, "flyer")
        names = set(
            session.scalars(
                select(Tag.name)
                .join(CustomerTag, CustomerTag.tag_id == Tag.id)
                .where(CustomerTag.customer_id == follower.customer_id)
            )
        )
        assert names == {"wechat-follower", "flyer-2026"}
        assert (
            session.scalar(
                select(func.count()).select_from(TagHistory).where(TagHistory.source == "wechat")
            )
            == 2
        )
        session.rollback()
    gone = pusher.event("oFan", "unsubscribe", CreateTime=1700000200)
    assert (gone.status, gone.body) == (200, "success")
    with app.app_context():
        follower = get_state().session.scalar(select(WechatFollower))
        assert follower.subscribed is False
        assert follower.unsubscribed_at is not None


def test_scan_and_click_events(served):
    app, url = served
    with app.app_context():
        wechat_oa.save_rule(None, trigger="click", keyword="MENU_HOURS", reply="9:00-18:00")
    pusher = OAPusher(url, token=TOKEN, appid=APPID)
    click = pusher.event("oClicker", "CLICK", "MENU_HOURS", CreateTime=1700000300)
    assert click.reply is not None and click.reply["Content"] == "9:00-18:00"
    scan = pusher.event("oClicker", "SCAN", "flyer", Ticket="T", CreateTime=1700000301)
    assert (scan.status, scan.body) == (200, "success")
    assert count(app, Tag, Tag.name == "flyer-2026") == 1
    unknown = pusher.event("oClicker", "CLICK", "MENU_NONE", CreateTime=1700000302)
    assert unknown.body == "success"


def test_safe_mode_push_and_encrypted_reply(make_app, database_url):
    app = make_app(database_url, KOUDAI_WECHAT=oa_settings(encoding_aes_key=AES_KEY))
    with LoopbackServer(app) as server:
        url = f"{server.url}/shop-hooks/wechat/oa"
        with app.app_context():
            wechat_oa.save_rule(None, trigger="keyword", keyword="hi", reply="hello there")
        pusher = OAPusher(url, token=TOKEN, appid=APPID, encoding_aes_key=AES_KEY)
        result = pusher.text("oSafe", "HI")
        assert result.status == 200
        assert "hello there" not in result.body  # the reply travels encrypted
        assert result.reply is not None and result.reply["Content"] == "hello there"
        # A push made with another appid's key material is refused and stores nothing more.
        stranger = OAPusher(url, token=TOKEN, appid="wx0000000000000000", encoding_aes_key=AES_KEY)
        assert stranger.text("oSafe", "hi").status == 403
        tampered = pusher.signed_query()
        tampered.update(encrypt_type="aes", msg_signature="0" * 40)
        bad = requests.post(
            url,
            params=tampered,
            data=f"<xml><Encrypt><![CDATA[{VECTOR_ENCRYPT}]]></Encrypt></xml>".encode(),
            timeout=10,
        )
        assert bad.status_code == 403
    assert count(app, WechatMessage, WechatMessage.direction == "in") == 1


def test_concurrent_retries_of_one_push_store_it_once(make_app, postgres_url):
    app = make_app(postgres_url, KOUDAI_WECHAT=oa_settings())
    with LoopbackServer(app) as server:
        pusher = OAPusher(f"{server.url}/shop-hooks/wechat/oa", token=TOKEN, appid=APPID)
        fields = pusher.message_fields(
            "oRacer", "text", Content="hello", MsgId=777000111, CreateTime=1700000400
        )
        statuses: list[int] = []
        barrier = threading.Barrier(6)

        def post() -> None:
            barrier.wait()
            statuses.append(pusher.push(fields).status)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 6
    assert count(app, WechatMessage) == 1
    assert count(app, WechatFollower) == 1
    assert count(app, CustomerIdentity, CustomerIdentity.value == "oRacer") == 1
