"""Products with their SKU matrix and images, and categories; all need ``catalog.edit``.

The matrix editor works without JavaScript: "Generate SKUs" posts the options back and the
page returns with one row per combination of their values (keeping what was typed); "Save"
writes the product and its rows through :func:`catalog_admin.save_product`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.common import page_number
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound, PermissionDenied, ValidationError
from koudai_flask.extension import get_state
from koudai_flask.i18n import gettext as _k
from koudai_flask.models import Category, Product
from koudai_flask.services import catalog, catalog_admin, favourites, shipping_templates
from koudai_flask.services.catalog_admin import MAX_OPTIONS, MAX_SKUS, ProductDraft, SkuRow
from koudai_flask.services.transaction import current_session

PER_PAGE = 30
STATUSES = ("active", "archived")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX_JUNK = re.compile(r"[^A-Z0-9._-]")


def _product_or_404(product_id: int) -> Product:
    try:
        return catalog.get_product(current_session(), product_id)
    except NotFound:
        abort(404)


def _categories() -> list[Category]:
    return list(
        current_session().scalars(select(Category).order_by(Category.position, Category.name))
    )


# -- reading the product form ----------------------------------------------------------------


def _fields(form: MultiDict[str, str], product: Product | None) -> dict[str, Any]:
    """The product's own fields: as posted, else as stored."""
    if not form:
        title = product.title if product else ""
        return {
            "title": title,
            "description": product.description if product else "",
            "category": product.category.slug if product and product.category else "",
            "shipping": str(product.shipping_template_id or "") if product else "",
            "featured": bool(product and product.featured),
            "prefix": catalog_admin.code_prefix(title, product) if product else "",
            "default_price": "",
        }
    return {
        "title": form.get("title", "").strip(),
        "description": form.get("description", "").strip(),
        "category": form.get("category", ""),
        "shipping": form.get("shipping", ""),
        "featured": form.get("featured") == "1",
        "prefix": _PREFIX_JUNK.sub("", form.get("prefix", "").upper())[:24]
        or catalog_admin.code_prefix(form.get("title", ""), product),
        "default_price": form.get("default_price", "").strip(),
    }


def _slots(form: MultiDict[str, str], product: Product | None) -> list[tuple[str, str]]:
    """MAX_OPTIONS (name, values as typed) pairs; a stored product's from its active SKUs."""
    if form:
        slots = [
            (form.get(f"option-{i}-name", "").strip(), form.get(f"option-{i}-values", ""))
            for i in range(MAX_OPTIONS)
        ]
    else:
        skus = sorted(product.skus if product else [], key=lambda s: (not s.active, s.id))
        live = [s for s in skus if s.active] or skus
        slots = []
        for name in (product.options if product else [])[:MAX_OPTIONS]:
            values = dict.fromkeys(str(s.attributes[name]) for s in live if name in s.attributes)
            slots.append((name, ", ".join(values)))
    return slots + [("", "")] * (MAX_OPTIONS - len(slots))


def _options(slots: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """The options that were filled in; what the matrix cannot be made of, said in words."""
    options = [(name, catalog_admin.split_values(values)) for name, values in slots]
    options = [(name, values) for name, values in options if name or values]
    names = [name for name, _ in options]
    if any(not name for name in names):
        raise ValidationError(_k("Give every option a name."))
    if len(set(names)) != len(names):
        raise ValidationError(_k("Two options have the same name."))
    if any(not values for _, values in options):
        raise ValidationError(_k("Give every option at least one value."))
    if math.prod(len(values) for _, values in options) > MAX_SKUS:
        raise ValidationError(_k("A product has at most %(n)d SKUs.", n=MAX_SKUS))
    return options


def _typed(form: MultiDict[str, str]) -> dict[str, dict[str, str]]:
    """The rows as posted, keyed by their combination of option values."""
    typed: dict[str, dict[str, str]] = {}
    count = min(form.get("rows", 0, type=int) or 0, MAX_SKUS)
    for i in range(count):
        try:
            attributes = json.loads(form.get(f"row-{i}-key", ""))
        except ValueError:
            continue
        if not isinstance(attributes, dict):
            continue
        typed[catalog_admin.attributes_key({str(k): str(v) for k, v in attributes.items()})] = {
            part: form.get(f"row-{i}-{part}", "").strip()
            for part in ("code", "price", "barcode", "weight", "stock")
        }
    return typed


def _whole(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _sku_rows(rows: list[dict[str, Any]], typed: dict[str, dict[str, str]]) -> list[SkuRow]:
    """Parse each row, noting its problems in ``row["errors"]``."""
    parsed = []
    for row in rows:
        errors = row["errors"] = []
        if row["key"] not in typed:
            errors.append(_k("A new combination: check this row, then save."))
        if not _CODE.match(row["code"]):
            errors.append(_k("The SKU code may hold letters, digits, '.', '_' and '-'."))
        try:
            price = catalog_admin.yuan_to_fen(row["price"])
        except ValidationError:
            price = 0
            errors.append(_k("Write the price in yuan, like 129.00."))
        weight = _whole(row["weight"] or "0")
        stock = _whole(row["stock"] or "0") if row["sku"] is None else 0
        if weight is None:
            errors.append(_k("The weight is a whole number of grams."))
        if stock is None:
            errors.append(_k("The opening stock is a whole number."))
        if len(row["barcode"]) > 64:
            errors.append(_k("A barcode has at most 64 characters."))
        parsed.append(
            SkuRow(row["attributes"], row["code"], price, row["barcode"], weight or 0, stock or 0)
        )
    return parsed


def _render_form(product: Product | None, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(
        "koudai/admin/product_form.html",
        product=product,
        categories=_categories(),
        shipping_templates=[template for template, _ in shipping_templates.templates()],
        image_url=get_state().storage.url,
        form=FlaskForm(),
        **context,
    ), status


def product_form(product: Product | None) -> ResponseReturnValue:
    """The new-product and edit-product page: show, generate the rows, or save."""
    form = request.form if request.method == "POST" else MultiDict()
    if request.method == "POST":
        checked_form()
    fields, slots = _fields(form, product), _slots(form, product)
    context: dict[str, Any] = {"fields": fields, "slots": slots, "rows": [], "errors": []}
    typed = _typed(form)
    try:
        options = _options(slots)
        context["rows"] = catalog_admin.matrix_rows(
            product,
            options,
            prefix=fields["prefix"],
            default_price=fields["default_price"],
            typed=typed,
        )
    except ValidationError as exc:
        context["errors"].append(refusal_text(exc))
        return _render_form(product, 422 if form else 200, **context)
    if form.get("action") != "save":
        return _render_form(product, **context)
    rows = _sku_rows(context["rows"], typed)
    if not fields["title"]:
        context["errors"].append(_k("The product needs a title."))
    if context["errors"] or any(row["errors"] for row in context["rows"]):
        return _render_form(product, 422, **context)
    draft = ProductDraft(
        title=fields["title"],
        description=fields["description"],
        category=fields["category"] or None,
        shipping_template=_whole(fields["shipping"]),
        featured=fields["featured"],
        options=options,
        rows=rows,
    )
    try:
        saved = catalog_admin.save_product(actor_id(), product.id if product else None, draft)
    except PermissionDenied:
        abort(403)
    except KoudaiError as exc:
        context["errors"].append(refusal_text(exc))
        return _render_form(product, 422, **context)
    flash(_k("Saved."), "success")
    return redirect(url_for(".product_edit", product_id=saved.id), 303)


# -- pages -----------------------------------------------------------------------------------


def register(bp: Blueprint) -> None:
    @bp.get("/products")
    @staff_required("catalog.edit")
    def products_list() -> ResponseReturnValue:
        q = request.args.get("q", "").strip()[:100]
        status = request.args.get("status", "")
        conditions = []
        if status in STATUSES:
            conditions.append(Product.status == status)
        for word in q.lower().split()[:8]:
            conditions.append(func.lower(Product.title).like(f"%{word}%"))
        session, page = current_session(), page_number()
        total = session.scalar(select(func.count()).select_from(Product).where(*conditions)) or 0
        products = session.scalars(
            select(Product)
            .where(*conditions)
            .options(
                selectinload(Product.skus),
                selectinload(Product.category),
                selectinload(Product.shipping_template),
            )
            .order_by(Product.id.desc())
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        ).all()
        return render_template(
            "koudai/admin/products.html",
            products=products,
            shipping_templates=[template for template, _ in shipping_templates.templates()],
            form=FlaskForm(),
            total=total,
            q=q,
            status=status,
            statuses=STATUSES,
            page=page,
            pages=max(1, -(-total // PER_PAGE)),
            kept=favourites.counts(p.id for p in products),
        )

    @bp.post("/products/shipping")
    @staff_required("catalog.edit")
    def products_shipping() -> ResponseReturnValue:
        """The ticked products get the chosen shipping template (or the flat fee)."""
        checked_form()
        ids = [int(v) for v in request.form.getlist("products") if v.isdigit()]
        chosen = request.form.get("shipping", "")
        try:
            changed = shipping_templates.assign(
                actor_id(), ids, int(chosen) if chosen.isdigit() else None
            )
        except PermissionDenied:
            abort(403)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
        else:
            flash(_k("Shipping set for %(n)d products.", n=changed), "success")
        return redirect(url_for(".products_list"), 303)

    @bp.route("/products/new", methods=["GET", "POST"])
    @staff_required("catalog.edit")
    def product_new() -> ResponseReturnValue:
        return product_form(None)

    @bp.route("/products/<int:product_id>", methods=["GET", "POST"])
    @staff_required("catalog.edit")
    def product_edit(product_id: int) -> ResponseReturnValue:
        return product_form(_product_or_404(product_id))

    @bp.post("/products/<int:product_id>/archive")
    @staff_required("catalog.edit")
    def product_archive(product_id: int) -> ResponseReturnValue:
        checked_form()
        _product_or_404(product_id)
        catalog_admin.archive_product(actor_id(), product_id)
        flash(_k("Archived: the shop no longer shows it."), "success")
        return redirect(url_for(".product_edit", product_id=product_id), 303)

    @bp.post("/products/<int:product_id>/images")
    @staff_required("catalog.edit")
    def product_image_upload(product_id: int) -> ResponseReturnValue:
        checked_form()
        _product_or_404(product_id)
        upload = request.files.get("image")
        if upload is None or not upload.filename:
            flash(_k("Choose an image file."), "error")
        else:
            try:
                catalog_admin.add_image(actor_id(), product_id, upload.stream)
                flash(_k("Image added."), "success")
            except ValidationError:
                flash(_k("Only JPEG, PNG, WebP, GIF or SVG images up to 5 MB."), "error")
        return redirect(url_for(".product_edit", product_id=product_id), 303)

    @bp.get("/categories")
    @staff_required("catalog.edit")
    def categories_list() -> ResponseReturnValue:
        counts = dict(
            current_session()
            .execute(select(Product.category_id, func.count()).group_by(Product.category_id))
            .all()
        )
        return render_template(
            "koudai/admin/categories.html",
            categories=_categories(),
            counts=counts,
            form=FlaskForm(),
        )

    @bp.post("/categories")
    @staff_required("catalog.edit")
    def category_create() -> ResponseReturnValue:
        checked_form()
        form = request.form
        name = form.get("name", "").strip()
        # A Chinese name has no letters to make an address of: then the slug must be typed.
        made = catalog.slugify(name)  # "item" when nothing of the name is ASCII
        slug = form.get("slug", "").strip().lower() or ("" if made == "item" else made)
        if not slug:
            flash(_k("Give the category an address name of letters and digits."), "error")
            return redirect(url_for(".categories_list"), 303)
        try:
            catalog_admin.create_category(
                actor_id(),
                name,
                slug,
                parent=form.get("parent") or None,
                position=form.get("position", 0, type=int) or 0,
            )
        except PermissionDenied:
            abort(403)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
            return redirect(url_for(".categories_list"), 303)
        flash(_k("Category added."), "success")
        return redirect(url_for(".categories_list"), 303)
