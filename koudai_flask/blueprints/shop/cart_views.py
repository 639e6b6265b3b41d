"""The cart and checkout, priced with the marketing plugins (special prices, 满减, coupons).

A coupon is applied on the checkout page with a plain GET (``?coupon=CODE``: it changes
nothing), which shows the saving; the order form carries the code and placing the order
redeems it.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from koudai_flask import identity
from koudai_flask.blueprints.field_messages import form_errors
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.blueprints.shop import tracking_views
from koudai_flask.blueprints.shop.common import (
    current_items,
    guest_orders,
    login_redirect,
    remember_guest_order,
    save_guest_items,
)
from koudai_flask.blueprints.shop.forms import (
    ActionForm,
    AddToCartForm,
    CartUpdateForm,
    CheckoutForm,
    typed_address,
)
from koudai_flask.blueprints.shop.order_views import own_order
from koudai_flask.errors import KoudaiError, NotFound, OutOfStock, ValidationError
from koudai_flask.i18n import gettext as _k
from koudai_flask.schemas import load
from koudai_flask.schemas.orders import AddressInput
from koudai_flask.services import cart, checkout, customers, freight, marketing
from koudai_flask.services.customers import AddressBookFull

_address_input = AddressInput()


def _coupon_typed(source: Any) -> str | None:
    """The coupon code typed in ``source`` (query or form), None when empty or absurd."""
    typed = str(source.get("coupon", source.get("coupon_code", "")) or "")
    return marketing.normalise_code(typed) if len(typed) <= 60 else None


def _change_cart(sku: str, quantity: int, *, add: bool) -> None:
    customer = identity.current_customer()
    if customer is not None:
        if add:
            cart.add(customer.id, sku, quantity)
        else:
            cart.set_quantity(customer.id, sku, quantity)
        return
    items = current_items()
    save_guest_items(
        cart.add_to(items, sku, quantity) if add else cart.with_quantity(items, sku, quantity)
    )


def register(bp: Blueprint) -> None:
    # Order pages list the discount lines; the product page strikes special prices through.
    bp.add_app_template_global(marketing.discounts_of, "koudai_order_discounts")
    bp.add_app_template_global(marketing.special_prices_for, "koudai_special_prices")

    @bp.get("/cart")
    def cart_page() -> ResponseReturnValue:
        customer = identity.current_customer()
        priced = cart.view(current_items(), customer_id=customer.id if customer else None)
        forms = {
            line.sku.code: CartUpdateForm(sku=line.sku.code, quantity=line.quantity, formdata=None)
            for line in priced.lines
        }
        return render_template("koudai/shop/cart.html", cart=priced, forms=forms)

    @bp.post("/cart/add")
    def cart_add() -> ResponseReturnValue:
        form = AddToCartForm()
        if not form.validate():
            return _form_error(form), 400
        try:
            _change_cart(form.sku.data or "", form.quantity.data or 1, add=True)
        except NotFound:
            return render_template(
                "koudai/shop/error.html", message=_k("This item no longer exists.")
            ), 404
        except ValidationError as exc:
            flash(refusal_text(exc), "error")
            return redirect(request.referrer or url_for(".cart_page"))
        flash(_k("Added to your cart."), "success")
        tracking_views.step("cart_added", ref=form.sku.data or "")
        return redirect(url_for(".cart_page"))

    @bp.post("/orders/<number>/again")
    def buy_again(number: str) -> ResponseReturnValue:
        """Put an earlier order's items in the cart again (再次购买)."""
        order = own_order(number)
        if not ActionForm().validate():
            abort(400)
        gone = []
        for line in order.lines:
            try:
                _change_cart(line.sku_code, line.quantity, add=True)
            except (NotFound, ValidationError):  # no longer sold, or the cart is full of it
                gone.append(line.title)
        if len(gone) < len(order.lines):
            flash(_k("The items of order %(number)s are in your cart.", number=number), "success")
        if gone:
            flash(_k("No longer on sale: %(items)s", items="、".join(gone)), "error")
        return redirect(url_for(".cart_page"))

    @bp.post("/cart/update")
    def cart_update() -> ResponseReturnValue:
        form = CartUpdateForm()
        if not form.validate():
            return _form_error(form), 400
        try:
            _change_cart(form.sku.data or "", form.quantity.data or 0, add=False)
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
        return redirect(url_for(".cart_page"))

    @bp.route("/checkout", methods=["GET", "POST"])
    def checkout_page() -> ResponseReturnValue:
        customer = identity.current_customer()
        if customer is None and not current_app.config["KOUDAI_GUEST_CHECKOUT"]:
            return login_redirect()
        if request.method == "POST":
            placed = checkout.order_for_token(request.form.get("token", ""))
            if placed is not None and _is_own(placed, customer):
                # The same checkout submitted again (double tap, reload): the same order.
                return redirect(url_for(".pay", number=placed.number))
        items = current_items()
        coupon = _coupon_typed(request.args if request.method == "GET" else request.form)
        book = customers.addresses(customer.id) if customer is not None else []
        form = CheckoutForm()
        if request.method == "GET":
            # The saved address asked for (the page reloads with it when another is
            # chosen, the fee depending on the province), else the first; "" is a new one.
            form.address_id.data = request.args.get("address_id", str(book[0].id) if book else "")
        # The fee shown is for the address chosen, saved or posted.
        province = freight.province_of(_province_given(form, book))
        priced = cart.view(
            items,
            customer_id=customer.id if customer else None,
            coupon_code=coupon,
            province=province,
        )
        if not priced.lines:
            return redirect(url_for(".cart_page"))
        if request.method == "GET":
            form.token.data = secrets.token_hex(16)
            return render_template(
                "koudai/shop/checkout.html", form=form, cart=priced, addresses=book, coupon=coupon
            )
        if not form.validate():
            return _form_error(form), 400
        try:
            address = _checkout_address(form, customer)
            order = checkout.place_order(
                items=items,
                address=address,
                token=form.token.data or "",
                customer_id=customer.id if customer else None,
                note=form.note.data or "",
                coupon_code=coupon,
            )
        except (ValidationError, OutOfStock, NotFound) as exc:
            message = refusal_text(exc)
            refused_fields = form_errors(exc, form)
            if refused_fields:
                # Every problem at the top too: a re-skinned checkout.html may not mark fields.
                message = " ".join(refused_fields.values())
            if isinstance(exc, OutOfStock):
                message = _k("Not enough stock left for one of the items; check your cart.")
            if isinstance(exc, marketing.CouponRefused):
                # Priced again without the coupon, so the page shows what would be paid.
                priced = cart.view(
                    items, customer_id=customer.id if customer else None, province=province
                )
            return render_template(
                "koudai/shop/checkout.html",
                form=form,
                cart=priced,
                addresses=book,
                error=message,
                field_errors=refused_fields,
                coupon=coupon,
            ), exc.http_status
        tracking_views.order_placed(order)
        if customer is None:
            remember_guest_order(order.number)
            save_guest_items({})
        return redirect(url_for(".pay", number=order.number))

    @bp.get("/checkout/totals")
    def checkout_totals() -> ResponseReturnValue:
        """The checkout's totals priced for the province typed in the new address's form,
        so that the fee shown follows it before the order is placed (the page's script
        asks as the buyer types; the order is priced again when it is placed)."""
        customer = identity.current_customer()
        if customer is None and not current_app.config["KOUDAI_GUEST_CHECKOUT"]:
            return "", 401
        typed = request.args.get("province", "")
        priced = cart.view(
            current_items(),
            customer_id=customer.id if customer else None,
            coupon_code=_coupon_typed(request.args),
            province=freight.province_of(typed) if len(typed) <= 40 else None,
        )
        if not priced.lines:
            return "", 409
        return render_template("koudai/shop/_checkout_totals.html", cart=priced)


def _is_own(order: Any, customer: Any) -> bool:
    if customer is not None:
        return bool(order.customer_id == customer.id)
    return order.customer_id is None and order.number in guest_orders()


def _province_given(form: CheckoutForm, book: list[Any]) -> str:
    """The province of the address chosen: the saved one, or the new one as posted."""
    chosen = next((a for a in book if str(a.id) == form.address_id.data), None)
    return chosen.province if chosen is not None else (form.province.data or "")


def _checkout_address(form: CheckoutForm, customer: Any) -> dict[str, Any]:
    fields = typed_address(form)
    if form.address_id.data and customer is not None:
        if fields["street"]:
            # A saved address chosen and a new one typed (the page hides the new one's
            # fields only where the browser can): ask, rather than ship to the wrong one.
            raise ValidationError(
                "both a saved address and a new one were given", reason="two_addresses"
            )
        return customers.get_address(customer.id, int(form.address_id.data)).as_dict()
    address: dict[str, Any] = load(_address_input, fields, "address")
    if customer is not None and form.save_address.data:
        with contextlib.suppress(AddressBookFull):  # the order goes ahead, the book as it was
            customers.add_address(customer.id, **address)
    return address


def _form_error(form: Any) -> str:
    if "csrf_token" in form.errors:
        message = _k("This page expired. Go back, reload it and try again.")
    else:
        message = _k("Please check the form and try again.")
    return render_template("koudai/shop/error.html", message=message)
