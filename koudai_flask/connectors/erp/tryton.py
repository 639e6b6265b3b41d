"""The Tryton ERP adapter: trytond's JSON-RPC over HTTP, as PROTOCOLS §6.7 describes it.

It speaks the wire protocol and nothing else. ``TrytonClient`` logs in with
``common.db.login``, sends ``Authorization: Session base64(login:user_id:session)`` on every
call to ``POST <base>/<db>/rpc/`` and passes the user's preferences
(``model.res.user.get_preferences``) as the context, the way Tryton's own clients do. The
adapter methods return plain dataclasses and never touch our database. The transport is
:mod:`~koudai_flask.connectors.erp.tryton_rpc`; warehouses, products and stock levels are
:class:`~koudai_flask.connectors.erp.tryton_stock.TrytonStock`, which the client extends
with orders and shipments.

Failures map to the typed connector errors (DESIGN.md "Connectors"):

- HTTP 401 on a call: the session expired or was logged out. The client logs in again once
  and repeats the call; a second 401 raises ``AuthExpired``.
- A refused login (wrong login or password, HTTP 401 on ``common.db.login``) raises
  ``AuthExpired``: the stored credentials are no longer valid, so the job layer asks the
  owner for new ones instead of retrying a call that would fail the same way.
- HTTP 429 (trytond throttles failed logins) raises ``RateLimited``.
- ``{"error": ["UserError", ...]}`` (validation, access rules, a button the record's state
  refuses) raises ``PermanentFailure``, and ``UserWarning`` its subclass ``TrytonWarning``.
  HTTP 403 is permanent too: trytond 8.2 answers 403 for a method that is not exposed over
  RPC, which a re-login would not change. So are 404 (unknown database) and a server
  exception such as an unknown model or field.
- ``ConcurrencyException``, a locked database, HTTP 5xx and connection errors or timeouts
  raise ``TemporaryFailure``.

Orders go to Tryton as ``sale.sale`` records (``reference`` = our order number; quoted and
confirmed, so Tryton creates the outgoing shipment itself) when the ``sale`` module is
activated. Without it (or with ``push_as="shipment"``), ``push_sale`` falls back to a
``stock.shipment.out`` in state ``waiting`` whose ``reference`` is our order number. Either
way a push is idempotent: the adapter looks for the reference first and creates nothing when
it already exists (two pushes of one order racing each other can still both create).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import requests

from koudai_flask.connectors.erp.tryton_rpc import TrytonWarning
from koudai_flask.connectors.erp.tryton_stock import Product, TrytonStock, Warehouse
from koudai_flask.connectors.errors import PermanentFailure

# --- plain data the adapter returns -------------------------------------------------------


@dataclass(frozen=True)
class PushedOrder:
    """Where an order landed in Tryton: a sale (or a shipment without the sale module)."""

    model: Literal["sale.sale", "stock.shipment.out"]
    id: int
    reference: str
    number: str | None
    state: str
    created: bool


@dataclass(frozen=True)
class Shipment:
    """An outgoing Tryton shipment for one of our orders, as the sync job needs it."""

    id: int
    number: str | None
    reference: str
    """Our order number (the sale's ``reference``, or the shipment's own in fallback mode)."""
    state: str
    tracking_number: str | None
    effective_date: date | None
    write_date: datetime


# --- the client ---------------------------------------------------------------------------


class TrytonClient(TrytonStock):
    """The calls the sync jobs use: :class:`TrytonStock`'s, plus orders and shipments."""

    def __init__(
        self,
        base_url: str,
        database: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        push_as: Literal["auto", "sale", "shipment"] = "auto",
    ) -> None:
        super().__init__(base_url, database, username, password, timeout, session)
        # "auto": a sale when the sale module is activated, else a shipment; a shop whose
        # Tryton sells on its own but only ships our orders can ask for "shipment".
        self.push_as = push_as

    # -- orders and shipments ----------------------------------------------------------

    def _pushes_sales(self) -> bool:
        if self.push_as == "auto":
            return self.has_sale_module()
        return self.push_as == "sale"

    def _customer_address(self, address: Mapping[str, Any]) -> tuple[int, int]:
        """The party named after the receiver (found or created) and a new delivery address."""
        name = str(address.get("name") or "Koudai customer")
        parties = self.search_read("party.party", [["name", "=", name]], ["name"])
        if parties:
            party_id = int(parties[0]["id"])
        else:
            (party_id,) = self.model("party.party", "create", [{"name": name}])
        street = " ".join(
            str(address[key])
            for key in ("province", "city", "district", "street", "detail")
            if address.get(key)
        )
        values: dict[str, Any] = {"party": party_id, "street": street or name}
        if address.get("city"):
            values["city"] = str(address["city"])
        if address.get("postcode"):
            values["postal_code"] = str(address["postcode"])
        (address_id,) = self.model("party.address", "create", [values])
        return party_id, int(address_id)

    def push_sale(self, order: Mapping[str, Any], warehouse_id: int | None = None) -> PushedOrder:
        """Send one order to Tryton; pushing the same order number again creates nothing.

        ``order`` is plain data: ``{"number", "lines": [{"sku", "quantity",
        "unit_price_fen", "name"?}], "address": {"name", "phone", "province", "city",
        "district", "street", "postcode"}}``. Products missing in Tryton are created first.
        With the sale module the sale is quoted and confirmed (invoicing left "manual": the
        shop's payment already happened on its channel), so Tryton creates the shipment.
        """
        number = str(order["number"])
        if self._pushes_sales():
            return self._push_sale_order(order, number, warehouse_id)
        return self._push_shipment(order, number, warehouse_id)

    def _order_lines(self, order: Mapping[str, Any]) -> list[tuple[Product, int, Decimal]]:
        lines = []
        for line in order["lines"]:
            sku = str(line["sku"])
            product = self.ensure_product(sku, str(line.get("name") or sku))
            price = (Decimal(int(line["unit_price_fen"])) / 100).quantize(Decimal("0.01"))
            lines.append((product, int(line["quantity"]), price))
        if not lines:
            raise PermanentFailure(f"order {order['number']} has no lines")
        return lines

    def _push_sale_order(
        self, order: Mapping[str, Any], number: str, warehouse_id: int | None
    ) -> PushedOrder:
        fields = ["number", "reference", "state"]
        existing = self.search_read("sale.sale", [["reference", "=", number]], fields)
        if existing:
            row = existing[0]
            return PushedOrder("sale.sale", row["id"], number, row["number"], row["state"], False)
        warehouse = self._warehouse(warehouse_id)
        lines = self._order_lines(order)
        party_id, address_id = self._customer_address(order.get("address") or {})
        unit = self.unit_id()
        (sale_id,) = self.model(
            "sale.sale",
            "create",
            [
                {
                    "company": self.context["company"],
                    "currency": self._company_currency(),
                    "party": party_id,
                    "invoice_address": address_id,
                    "shipment_address": address_id,
                    "warehouse": warehouse.id,
                    "reference": number,
                    "invoice_method": "manual",
                    "shipment_method": "order",
                    "lines": [
                        [
                            "create",
                            [
                                {
                                    "type": "line",
                                    "product": product.id,
                                    "quantity": float(quantity),
                                    "unit": unit,
                                    "unit_price": price,
                                }
                                for product, quantity, price in lines
                            ],
                        ]
                    ],
                }
            ],
        )
        self.model("sale.sale", "quote", [sale_id])
        self.model("sale.sale", "confirm", [sale_id])
        (row,) = self.model("sale.sale", "read", [sale_id], fields)
        return PushedOrder("sale.sale", sale_id, number, row["number"], row["state"], True)

    def _company_currency(self) -> int:
        (row,) = self.model("company.company", "read", [self.context["company"]], ["currency"])
        return int(row["currency"])

    def _push_shipment(
        self, order: Mapping[str, Any], number: str, warehouse_id: int | None
    ) -> PushedOrder:
        fields = ["number", "reference", "state"]
        existing = self.search_read("stock.shipment.out", [["reference", "=", number]], fields)
        if existing:
            row = existing[0]
            return PushedOrder(
                "stock.shipment.out", row["id"], number, row["number"], row["state"], False
            )
        warehouse = self._warehouse(warehouse_id)
        lines = self._order_lines(order)
        party_id, address_id = self._customer_address(order.get("address") or {})
        (party,) = self.model("party.party", "read", [party_id], ["customer_location"])
        unit = self.unit_id()
        currency = self._company_currency()
        (shipment_id,) = self.model(
            "stock.shipment.out",
            "create",
            [
                {
                    "company": self.context["company"],
                    "customer": party_id,
                    "delivery_address": address_id,
                    "warehouse": warehouse.id,
                    # Stored copies of the warehouse's locations that the moves' domain
                    # checks; Tryton's client fills them with an on_change, RPC does not.
                    "warehouse_storage": warehouse.storage_location_id,
                    "warehouse_output": warehouse.output_location_id,
                    "reference": number,
                    "outgoing_moves": [
                        [
                            "create",
                            [
                                {
                                    "product": product.id,
                                    "quantity": float(quantity),
                                    "unit": unit,
                                    "from_location": warehouse.output_location_id,
                                    "to_location": party["customer_location"],
                                    "unit_price": price,
                                    "currency": currency,
                                    "company": self.context["company"],
                                }
                                for product, quantity, price in lines
                            ],
                        ]
                    ],
                }
            ],
        )
        self.model("stock.shipment.out", "wait", [shipment_id])
        (row,) = self.model("stock.shipment.out", "read", [shipment_id], fields)
        return PushedOrder(
            "stock.shipment.out", shipment_id, number, row["number"], row["state"], True
        )

    def accept_warning(self, warning: TrytonWarning) -> None:
        """Confirm a warning once for this user, as Tryton's client does; then call again."""
        self.model(
            "res.user.warning",
            "create",
            [{"user": self.user_id, "name": warning.warning_name, "always": False}],
        )

    def shipments_since(self, since: datetime) -> list[Shipment]:
        """Outgoing shipments created or changed at or after ``since`` for our orders.

        The order number comes from the sale behind the shipment's moves (``sale.sale``
        ``reference``); the tracking number is the shipment's ``reference``, Tryton's
        "external identifier" field where the warehouse records the carrier's waybill. In
        fallback mode (no sale module) the shipment's ``reference`` is our order number and
        there is no tracking number. Shipments without an order number are not ours and
        are left out.
        """
        domain: list[Any] = ["OR", ["write_date", ">=", since], ["create_date", ">=", since]]
        rows = self.search_read(
            "stock.shipment.out",
            domain,
            [
                "number",
                "reference",
                "state",
                "effective_date",
                "write_date",
                "create_date",
                "outgoing_moves",
            ],
            order=[["id", "ASC"]],
        )
        if not rows:
            return []
        with_sale = self._pushes_sales()
        order_numbers: dict[int, str] = {}
        if with_sale:
            order_numbers = self._order_numbers(rows)
        shipments = []
        for row in rows:
            if with_sale:
                reference = order_numbers.get(row["id"])
                tracking = row.get("reference") or None
            else:
                reference = row.get("reference") or None
                tracking = None
            if not reference:
                continue
            shipments.append(
                Shipment(
                    id=row["id"],
                    number=row.get("number"),
                    reference=reference,
                    state=row["state"],
                    tracking_number=tracking,
                    effective_date=row.get("effective_date"),
                    write_date=row.get("write_date") or row["create_date"],
                )
            )
        return shipments

    def _order_numbers(self, shipments: list[dict[str, Any]]) -> dict[int, str]:
        """Shipment id -> the ``reference`` of the sale its outgoing moves come from."""
        move_ids = sorted({m for row in shipments for m in row["outgoing_moves"]})
        if not move_ids:
            return {}
        moves = self.model("stock.move", "read", move_ids, ["sale", "shipment"])
        sale_ids = sorted({m["sale"] for m in moves if m.get("sale")})
        if not sale_ids:
            return {}
        sales = self.model("sale.sale", "read", sale_ids, ["reference"])
        references = {s["id"]: s["reference"] for s in sales if s.get("reference")}
        numbers: dict[int, str] = {}
        for row in shipments:
            for move in moves:
                if move["id"] in row["outgoing_moves"] and move.get("sale") in references:
                    numbers[row["id"]] = references[move["sale"]]
                    break
        return numbers


__all__ = ["PushedOrder", "Product", "Shipment", "TrytonClient", "TrytonWarning", "Warehouse"]
