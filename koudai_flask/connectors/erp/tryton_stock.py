"""Tryton's warehouses, products and stock levels: the catalogue half of the Tryton adapter.

:class:`~koudai_flask.connectors.erp.tryton.TrytonClient` adds orders and shipments on top;
this half is what the stock sync reads and what an order push needs to find or create its
products. Like the rest of the adapter it returns plain dataclasses and never touches our
database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from koudai_flask.connectors.erp.tryton_rpc import TrytonRpc
from koudai_flask.connectors.errors import PermanentFailure


@dataclass(frozen=True)
class Warehouse:
    """A Tryton warehouse location, with the storage and output locations inside it."""

    id: int
    name: str
    code: str
    storage_location_id: int
    output_location_id: int


@dataclass(frozen=True)
class Product:
    """A Tryton variant (``product.product``) and its template."""

    id: int
    code: str
    name: str
    template_id: int
    created: bool = False


class TrytonStock(TrytonRpc):
    """Warehouses, units, products and on-hand quantities, over a :class:`TrytonRpc` session."""

    _unit_id: int | None = None  # the "unit" UoM's id, looked up once per client
    _has_sale: bool | None = None  # whether the sale module is installed, asked once

    def warehouses(self) -> list[Warehouse]:
        """Every warehouse location, in Tryton's order."""
        rows = self.search_read(
            "stock.location",
            [["type", "=", "warehouse"]],
            ["name", "code", "storage_location", "output_location"],
        )
        return [
            Warehouse(
                id=row["id"],
                name=row["name"],
                code=row.get("code") or "",
                storage_location_id=row["storage_location"],
                output_location_id=row["output_location"],
            )
            for row in rows
        ]

    def _warehouse(self, warehouse_id: int | None) -> Warehouse:
        warehouses = self.warehouses()
        if not warehouses:
            raise PermanentFailure("Tryton has no warehouse")
        if warehouse_id is None:
            return warehouses[0]
        for warehouse in warehouses:
            if warehouse.id == warehouse_id:
                return warehouse
        raise PermanentFailure(f"Tryton has no warehouse {warehouse_id}")

    def stock_levels(self, warehouse_id: int, codes: Iterable[str] | None = None) -> dict[str, int]:
        """On-hand quantity per product code in a warehouse (its storage included), today.

        Tryton computes ``quantity`` for the ``locations`` of the context; it is a float
        in the product's unit, and our ledger counts whole units, so it is truncated.
        """
        domain: list[Any] = [["type", "=", "goods"]]
        if codes is not None:
            wanted = sorted(set(codes))
            if not wanted:
                return {}
            domain.append(["code", "in", wanted])
        rows = self.search_read(
            "product.product",
            domain,
            ["code", "quantity"],
            context={"locations": [warehouse_id], "with_childs": True},
        )
        return {row["code"]: int(row["quantity"] or 0) for row in rows if row.get("code")}

    def unit_id(self) -> int:
        """The id of the "Unit" unit of measure (symbol ``u``) that our products use."""
        if self._unit_id is None:
            rows = self.search_read("product.uom", [["symbol", "=", "u"]], ["name"])
            if not rows:
                raise PermanentFailure("Tryton has no unit of measure with symbol 'u'")
            self._unit_id = int(rows[0]["id"])
        return self._unit_id

    def find_product(self, code: str) -> Product | None:
        """The variant whose code is ``code``, or None."""
        rows = self.search_read(
            "product.product", [["code", "=", code]], ["code", "name", "template"]
        )
        if not rows:
            return None
        row = rows[0]
        return Product(
            id=row["id"], code=row["code"], name=row["name"], template_id=row["template"]
        )

    def ensure_product(self, code: str, name: str) -> Product:
        """The variant with ``code``; creates a salable goods template with it if missing."""
        existing = self.find_product(code)
        if existing is not None:
            return existing
        values: dict[str, Any] = {
            "name": name,
            "type": "goods",
            "default_uom": self.unit_id(),
            "products": [["create", [{"suffix_code": code}]]],
        }
        if self.has_sale_module():
            values.update(salable=True, sale_uom=self.unit_id())
        (template_id,) = self.model("product.template", "create", [values])
        created = self.find_product(code)
        if created is None:
            raise PermanentFailure(f"Tryton did not create a variant with code {code!r}")
        return Product(id=created.id, code=code, name=name, template_id=template_id, created=True)

    def set_stock(self, code: str, quantity: int, warehouse_id: int | None = None) -> int:
        """Count ``quantity`` units of ``code`` in a warehouse's storage (a confirmed inventory).

        For tests and demos: a real shop's stock moves through Tryton's own documents.
        Returns the inventory id.
        """
        product = self.find_product(code)
        if product is None:
            raise PermanentFailure(f"Tryton has no product with code {code!r}")
        warehouse = self._warehouse(warehouse_id)
        (inventory_id,) = self.model(
            "stock.inventory",
            "create",
            [
                {
                    "location": warehouse.storage_location_id,
                    "lines": [["create", [{"product": product.id, "quantity": float(quantity)}]]],
                }
            ],
        )
        self.model("stock.inventory", "confirm", [inventory_id])
        return int(inventory_id)

    def has_sale_module(self) -> bool:
        """Whether the ``sale`` module is activated (decides where ``push_sale`` goes)."""
        if self._has_sale is None:
            rows = self.search_read(
                "ir.module", [["name", "=", "sale"], ["state", "=", "activated"]], ["name"]
            )
            self._has_sale = bool(rows)
        return self._has_sale
