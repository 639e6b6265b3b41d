"""The SSRF guard of outbound webhooks: only http(s) URLs without credentials, only public
addresses (checked when subscribing and again before each attempt), and the connection made
to the address that was checked, over HTTP and over HTTPS with the real host's certificate."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from koudai_flask.connectors.sandbox.loopback import POLL_INTERVAL
from koudai_flask.errors import ValidationError
from koudai_flask.models import WebhookSubscription
from koudai_flask.services import catalog, inventory, webhooks
from koudai_flask.services.transaction import unit_of_work
from koudai_flask.services.webhook_wire import AddressRefused, Target, check_url, post
from tests.test_webhooks import OWNER, SECRET, Receiver, rows, subscribe


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.stop()


# -- the SSRF guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.9/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
    ],
)
def test_private_and_loopback_addresses_are_refused(url):
    with pytest.raises(AddressRefused):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/hook", "must start with https:// or http://"),
        ("file:///etc/passwd", "must start with https:// or http://"),
        (
            "https://user:pass@93.184.216.34/hook",
            "must not carry a user name or password; sign requests with the secret",
        ),
        ("https:///hook", "must name a host"),
        ("https://93.184.216.34/hook#x", "must not have a #fragment"),
        ("https://93.184.216.34/ hook", "must not contain spaces or control characters"),
        ("https://93.184.216.34:99999/", "is not a valid URL"),
        ("", "is required"),
    ],
)
def test_only_plain_http_urls_are_taken(url, problem):
    with pytest.raises(ValidationError) as info:
        check_url(url, allow_private=True)
    assert info.value.message == f"webhook URL {problem}"


def test_a_public_address_is_taken():
    target = check_url("https://93.184.216.34/hook?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.address) == (
        "https",
        "93.184.216.34",
        443,
        "93.184.216.34",
    )


def test_a_loopback_url_is_refused_at_subscribe_time(make_app, database_url, receiver):
    app = make_app(database_url, KOUDAI_WEBHOOKS=True)
    with app.app_context():
        with pytest.raises(AddressRefused) as info:
            webhooks.create_subscription(receiver.url, ["order.paid"], owner_user_id=OWNER)
        assert "is a loopback address (127.0.0.1)" in info.value.message
        assert webhooks.list_subscriptions() == []


def test_the_address_is_checked_again_at_send_time(make_app, database_url, receiver):
    app = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True)
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
        subscribe(receiver, "stock.changed")
        # What "the name now resolves to a private address" comes to: the check fails.
        app.config["KOUDAI_WEBHOOKS_ALLOW_PRIVATE"] = False
        inventory.adjust("KET", 1, reason="count")
        [delivery] = rows()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
        assert delivery.error.startswith("refused: webhook URL: 127.0.0.1 is a loopback address")
        assert receiver.received == []


def _kettle_app(make_app: Any, database_url: str) -> Any:
    app = make_app(database_url, KOUDAI_WEBHOOKS=True, KOUDAI_WEBHOOKS_ALLOW_PRIVATE=True)
    with app.app_context():
        catalog.create_product(title="Kettle", skus=[{"code": "KET", "price": 9900, "stock": 5}])
    return app


def test_a_name_that_stopped_resolving_is_tried_again_later(make_app, database_url, receiver):
    app = _kettle_app(make_app, database_url)
    with app.app_context():
        sub = subscribe(receiver, "stock.changed")
        with unit_of_work() as session:  # the receiver's DNS record is gone since
            session.get(WebhookSubscription, sub.id).url = "http://no-such-host.invalid/hook"
        inventory.adjust("KET", 1, reason="count")
        [delivery] = rows()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.next_attempt_at is not None
        assert "no-such-host.invalid" in delivery.error
        assert receiver.received == []


def test_a_secret_that_no_longer_decrypts_fails_without_retry(make_app, database_url, receiver):
    app = _kettle_app(make_app, database_url)
    with app.app_context():
        subscribe(receiver, "stock.changed")
        app.config["SECRET_KEY"] = "rotated-without-re-sealing"  # the sealed secret is lost
        inventory.adjust("KET", 1, reason="count")
        [delivery] = rows()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
        assert delivery.error == (
            "ConfigError: a webhook secret cannot be decrypted (SECRET_KEY changed?); "
            "rotate the subscription's secret"
        )
        assert "rotated" not in delivery.error and SECRET not in delivery.error
        assert receiver.received == []


# -- the connection goes to the checked address ----------------------------------------------------


def test_the_request_goes_to_the_checked_address_under_the_real_host_name(receiver):

    target = Target(
        url=f"http://shop-erp.example:{receiver.server.port}/hooks/koudai?v=1",
        scheme="http",
        host="shop-erp.example",
        port=receiver.server.port,
        address="127.0.0.1",
    )
    result = post(target, b"{}", {}, 5.0)
    assert (result.status, result.body) == (401, "bad signature")  # unsigned on purpose
    [received] = receiver.received
    assert received.headers["Host"] == f"shop-erp.example:{receiver.server.port}"


@pytest.fixture
def tls_receiver(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``localhost`` only."""
    import datetime
    import http.server
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from koudai_flask.services import webhook_wire

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    names: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"tls ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, server_name, ctx: names.append(server_name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    monkeypatch.setattr(webhook_wire, "TLS_VERIFY", str(cert_path))
    yield server.server_address[1], names
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_https_goes_to_the_checked_address_and_checks_the_real_host(tls_receiver):

    port, names = tls_receiver

    def to(host: str) -> Target:
        return Target(f"https://{host}:{port}/hook", "https", host, port, "127.0.0.1")

    result = post(to("localhost"), b"{}", {}, 5.0)
    assert (result.status, result.body) == (200, "tls ok")
    assert names == ["localhost"]  # SNI names the host, not the address
    # A certificate that does not name the host is refused, whatever the address.
    refused = post(to("shop-erp.example"), b"{}", {}, 5.0)
    assert (refused.status, refused.error) == (
        None,
        "connection failed: the receiver could not be reached",
    )
