"""Placing an order on PostgreSQL in one statement, without reading first.

``placing.place_in`` tries this before its lookup, for an order the marketing plugins do not
price. ``placing_sql.statement(shape)`` reads the lines' SKUs, checks everything
the lookup would decide (the channel active, every SKU on sale, no earlier order with the
idempotency key or external id, the customer there), holds the stock and writes every row,
or changes nothing. When it changes nothing because a line is short of stock, and for no
other reason, it says so and ``OutOfStock`` is raised at once; otherwise the caller goes on
as if this had not been tried: its lookup and checks find the reason and raise the precise
error (or replay the earlier order, or place it if what was missing came in between).

When ``place`` is the outermost service call and its transaction has sent nothing yet, the
statement runs in autocommit: one statement is one transaction in PostgreSQL, so the order
is as atomic as it would be between BEGIN and COMMIT, and it costs one round trip instead of
four (BEGIN, lookup, write, COMMIT). Inside a caller's transaction it runs there, and saves
the lookup only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from koudai_flask.connectors.base import PUSH_STOCK, kinds_with
from koudai_flask.errors import OutOfStock
from koudai_flask.services import direct, placing_catalog, placing_sql, placing_write
from koudai_flask.services.transaction import remember_outbox_event

# psycopg's ``TransactionStatus.IDLE``: connected, and no transaction open.
_IDLE = 0


class Short(NamedTuple):
    """A line the statement found short of stock, every line being found and allowed."""

    sku_id: int
    sku_code: str
    available: int
    quantity: int


def place(
    session: Session,
    bind: Engine | Connection,
    order: dict[str, Any],
    quantities: dict[str, int],
    prices: dict[str, int],
    *,
    customer_check: int | None,
    location_code: str,
    expires_at: datetime,
    actor: str,
) -> tuple[int, dict[str, Any]] | None:
    """Place ``order`` (its row without id, subtotal and total) in one statement.

    ``bind`` is the caller's connection (its transaction), or the engine when the order is
    a transaction of its own: the statement then runs on a connection of its own in
    autocommit. Returns the new order's id and its row completed, or None when the statement
    changed nothing for another reason than short stock (which raises ``OutOfStock``).
    Outbox events to dispatch are remembered on the session, as ``placing`` does.
    """
    now = order["created_at"]
    params = {
        "order": json.dumps(order, default=placing_write.json_time),
        "lines": [
            {"sku_code": code, "quantity": quantity, "unit_price": prices.get(code)}
            for code, quantity in quantities.items()
        ],
        "line_count": len(quantities),
        "channel": order["channel"],
        "prices_given": bool(prices),
        "key": order["idempotency_key"],
        "external_id": order["external_id"],
        "customer_id": customer_check,
        "push_kinds": sorted(kinds_with(PUSH_STOCK)),
        "marked_at": now,
        **placing_write.statement_params(
            order, location_code=location_code, expires_at=expires_at, actor=actor
        ),
        **placing_write.event_status("push", "channel.push_due", now),
    }
    params.update((f"code_{i}", code) for i, code in enumerate(quantities))
    shape = placing_catalog.Shape(
        len(quantities),
        order["idempotency_key"] is not None,
        order["external_id"] is not None,
        customer_check is not None,
    )
    statement = placing_sql.statement(shape)
    if isinstance(bind, Connection):
        rows = direct.rows(bind, statement, params)
    else:
        with bind.connect() as connection:
            rows = _autocommit_rows(connection, statement, params)
    written = placing_write.read_written(session, rows)
    if written is None:
        short = sorted(Short(*row[1:]) for row in rows if row[0] == "short")
        if short:  # everything else held: the first short line in SKU id order, as a hold
            raise OutOfStock(short[0].sku_code, short[0].quantity, short[0].available)
        return None
    for event_id in written.pending:
        remember_outbox_event(session, event_id)
    return written.order_id, {**order, "subtotal": written.subtotal, "total": written.total}


def _autocommit_rows(connection: Connection, statement: Any, params: dict[str, Any]) -> list[Any]:
    """The statement's rows, run as a transaction of its own on a fresh connection."""
    raw: Any = connection.connection.dbapi_connection
    alone = (
        connection.dialect.driver == "psycopg"
        and raw is not None
        and raw.info.transaction_status == _IDLE
    )
    if not alone:  # another driver: between BEGIN and COMMIT
        with connection.begin():
            return direct.rows(connection, statement, params)
    raw.autocommit = True
    try:
        return direct.rows(connection, statement, params)
    finally:
        if not raw.closed:
            raw.autocommit = False
