"""Telling buyers about their orders: WeChat template messages, text messages and e-mail.

Each module speaks one channel and nothing else; :mod:`koudai_flask.services.notifications`
decides who is told what and keeps the log (``Notification`` rows).

- :mod:`.wechat`: the Official Account API client (``access_token`` shared by every
  process through ``CredentialCache``, template messages).
- :mod:`.sms`: the provider interface and the built-in ``LogSmsProvider``.
- :mod:`.email`: SMTP with a plain-text and an HTML part.
- :mod:`.render`: the words of each message, from ``MessageTemplate`` rows or built-ins.
"""

from __future__ import annotations

CHANNELS = ("wechat", "sms", "email")
EVENTS = (
    "paid",
    "shipped",
    "delivered",
    "refunded",
    "partially_refunded",
    "refund_declined",
    "return_agreed",
    # The shop sent the order elsewhere (services.order_address): the buyer knows at once.
    "address_changed",
    # Not an order's: a sold-out SKU a buyer asked about is back (services.stock_alerts).
    "back_in_stock",
)

__all__ = ["CHANNELS", "EVENTS"]
