"""Offline payment: cash on delivery or bank transfer, marked paid by staff."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from koudai_flask.errors import ValidationError
from koudai_flask.payments.base import (
    PaymentAction,
    PaymentNotice,
    PaymentRequest,
    PaymentStatus,
    RefundResult,
)

SETTING = None


def validate_settings(value: Any) -> dict[str, Any]:
    return dict(value)


def build_provider(app: Flask) -> OfflineProvider | None:
    return OfflineProvider() if app.config["KOUDAI_OFFLINE_PAYMENT"] else None


def register_routes(bp: Blueprint) -> None:
    """Offline payments have no callback: staff mark them paid in the back office."""


class OfflineProvider:
    name = "offline"

    def start(self, request: PaymentRequest) -> PaymentAction:
        return PaymentAction(kind="offline", url=request.return_url)

    def parse_notify(self, headers: dict[str, str], body: bytes) -> PaymentNotice:
        raise ValidationError("offline payments have no notify")

    def query(self, order_number: str) -> PaymentStatus:
        return PaymentStatus(order_number=order_number, state="pending")

    def close(self, order_number: str) -> None:
        return None

    def refund(
        self, order_number: str, *, refund_no: str, amount: int, total: int, reason: str = ""
    ) -> RefundResult:
        # Money goes back by hand; the refund is recorded as done.
        return RefundResult(refund_id=refund_no, status="success")
