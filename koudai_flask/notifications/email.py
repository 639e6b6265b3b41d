"""E-mail to buyers over SMTP: one message, a plain-text part and its HTML alternative.

``KOUDAI_MAIL = {"host", "port", "sender", "username"?, "password"?, "starttls"?,
"ssl"?, "timeout"?}``. SMTP reply codes decide what a failure means (RFC 5321 §4.2.1):
4yz is transient (try again later), 5yz is permanent (do not repeat the same message).
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from koudai_flask.connectors.errors import PermanentFailure, TemporaryFailure
from koudai_flask.errors import ConfigError


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> MailSettings:
        """Read ``KOUDAI_MAIL``; a missing or unknown key is a ``ConfigError``."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"KOUDAI_MAIL: unknown key(s) {', '.join(unknown)}")
        missing = [key for key in ("host", "sender") if not settings.get(key)]
        if missing:
            raise ConfigError(f"KOUDAI_MAIL needs {' and '.join(missing)}")
        values = dict(settings)
        values.setdefault("port", 465 if values.get("ssl") else 25)
        return cls(**values)

    @property
    def domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "localhost"


class SmtpMailer:
    """Sends one message per connection; returns its ``Message-ID``."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    def compose(self, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        # Short and with an explicit domain: make_msgid() would look up this host's FQDN,
        # and the log keeps at most 64 characters of the id.
        message["Message-ID"] = f"<{uuid.uuid4().hex}@{self.settings.domain}>"
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return message

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> str:
        """Deliver the message to the SMTP server, or raise a typed connector error."""
        message = self.compose(to, subject, text, html)
        settings = self.settings
        try:
            smtp: smtplib.SMTP
            if settings.ssl:
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            with smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentFailure(
                f"SMTP login refused ({exc.smtp_code}); check KOUDAI_MAIL username and password"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentFailure(f"SMTP server does not support {exc}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = f"SMTP recipient refused ({', '.join(map(str, codes))})"
            if codes and all(400 <= code < 500 for code in codes):
                raise TemporaryFailure(reason) from None
            raise PermanentFailure(reason) from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            if isinstance(reply, bytes):
                reply = reply.decode("utf-8", "replace")
            reason = f"SMTP {exc.smtp_code}: {str(reply)[:200]}"
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(reason) from None
            raise PermanentFailure(reason) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused or dropped connections and time-outs: the server may be back later.
            raise TemporaryFailure(
                f"SMTP server {settings.host}:{settings.port} unreachable ({type(exc).__name__})"
            ) from None
        return str(message["Message-ID"])


def mailer_from_config(settings: Mapping[str, Any]) -> SmtpMailer:
    return SmtpMailer(MailSettings.from_config(settings))
