"""The words of each buyer message, from staff-edited templates or the built-in defaults.

Staff edit ``MessageTemplate`` rows in the back office, so their text is untrusted: it is
rendered by Jinja2's ``SandboxedEnvironment`` (no attribute tricks such as
``''.__class__``) with ``StrictUndefined`` (a misspelt variable is an error, not an empty
string). :func:`check` renders a template with sample data; the service refuses to save
one that fails, so a bad template is caught when it is written, not when a buyer pays.

A WeChat template message is not free text: the Official Account registers templates with
named fields (``keyword1``, ``thing2``, ...) and a message fills them (PROTOCOLS §3.3).
Its body is therefore one ``field: text`` line per field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from koudai_flask.errors import ValidationError

# Long enough for any sensible message; bounds what one staff edit can make us send.
MAX_TEMPLATE_LENGTH = 4000
MAX_OUTPUT_LENGTH = 8000

_FIELD_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s?(.*)$")

_environment = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@dataclass(frozen=True)
class Wording:
    """A template's source: subject (e-mail only) and body."""

    subject: str
    body: str


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready for a channel: text for SMS and e-mail, fields for WeChat."""

    subject: str
    text: str
    html: str | None = None
    wechat_fields: dict[str, str] = field(default_factory=dict)
    url: str | None = None


def _wechat(*lines: str) -> Wording:
    return Wording("", "\n".join(lines))


_ZH: dict[tuple[str, str], Wording] = {
    # Chinese SMS must open with the sender's 【signature】, or carriers reject it.
    ("paid", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}已付款{{ total }}，我们会尽快发货。"
        "{% if order_url %}查看订单：{{ order_url }}{% endif %}",
    ),
    ("shipped", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}已发货，{{ carrier }}运单号"
        "{{ tracking_number }}。{% if order_url %}查看物流：{{ order_url }}{% endif %}",
    ),
    ("delivered", "sms"): Wording(
        "", "【{{ shop_name }}】您的订单{{ order_number }}已签收，感谢您的惠顾。"
    ),
    ("refunded", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}已退款{{ refund_amount }}，款项将原路退回。",
    ),
    ("partially_refunded", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}已部分退款，累计退款{{ refund_amount }}，"
        "款项将原路退回。{% if order_url %}查看订单：{{ order_url }}{% endif %}",
    ),
    ("refund_declined", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}的退款申请未获同意：{{ reason }}"
        "{% if order_url %}查看订单：{{ order_url }}{% endif %}",
    ),
    ("return_agreed", "sms"): Wording(
        "",
        "【{{ shop_name }}】商家已同意您订单{{ order_number }}的退货，"
        "请将商品寄回：{{ return_address }}。寄出后请在订单页填写运单号。"
        "{% if order_url %}{{ order_url }}{% endif %}",
    ),
    ("paid", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}已付款",
        "您好，\n\n我们已收到订单{{ order_number }}的付款{{ total }}，会尽快为您发货。"
        "{% if order_url %}\n\n查看订单：{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("shipped", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}已发货",
        "您好，\n\n订单{{ order_number }}已交给{{ carrier }}，运单号{{ tracking_number }}。"
        "{% if order_url %}\n\n查看物流：{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("delivered", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}已签收",
        "您好，\n\n订单{{ order_number }}已签收，感谢您的惠顾。"
        "{% if order_url %}\n\n查看订单：{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("refunded", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}已退款",
        "您好，\n\n订单{{ order_number }}已退款{{ refund_amount }}，款项将原路退回您的支付账户。"
        "{% if order_url %}\n\n查看订单：{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("partially_refunded", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}已部分退款",
        "您好，\n\n订单{{ order_number }}已部分退款，累计退款{{ refund_amount }}，款项将原路退回"
        "您的支付账户。{% if order_url %}\n\n查看订单：{{ order_url }}{% endif %}"
        "\n\n{{ shop_name }}",
    ),
    ("refund_declined", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}的退款申请未获同意",
        "您好，\n\n订单{{ order_number }}的退款申请未获同意，商家的答复：{{ reason }}"
        "{% if order_url %}\n\n查看订单：{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("return_agreed", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}的退货已同意",
        "您好，\n\n商家已同意订单{{ order_number }}的退货，请将商品寄回：\n{{ return_address }}\n\n"
        "寄出后请在订单页填写快递公司和运单号。{% if order_url %}\n\n查看订单：{{ order_url }}"
        "{% endif %}\n\n{{ shop_name }}",
    ),
    ("address_changed", "sms"): Wording(
        "",
        "【{{ shop_name }}】您的订单{{ order_number }}的收货地址已改为：{{ address }}。"
        "如非您本人要求，请尽快联系我们。{% if order_url %}{{ order_url }}{% endif %}",
    ),
    ("address_changed", "email"): Wording(
        "{{ shop_name }}：订单{{ order_number }}的收货地址已修改",
        "您好，\n\n订单{{ order_number }}的收货地址已改为：\n{{ address }}\n\n"
        "如非您本人要求，请尽快联系我们。{% if order_url %}\n\n查看订单：{{ order_url }}"
        "{% endif %}\n\n{{ shop_name }}",
    ),
    ("address_changed", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ address }}", "keyword3: {{ status }}"
    ),
    ("back_in_stock", "sms"): Wording(
        "",
        "【{{ shop_name }}】您关注的{{ product }}{% if variant %}（{{ variant }}）{% endif %}"
        "到货了，数量有限，欢迎选购。{% if order_url %}{{ order_url }}{% endif %}",
    ),
    ("back_in_stock", "email"): Wording(
        "{{ shop_name }}：{{ product }}到货了",
        "您好，\n\n您关注的{{ product }}{% if variant %}（{{ variant }}）{% endif %}到货了，"
        "数量有限，欢迎选购。{% if order_url %}\n\n{{ order_url }}{% endif %}"
        "\n\n{{ shop_name }}",
    ),
    ("back_in_stock", "wechat"): _wechat(
        "keyword1: {{ product }}", "keyword2: {{ variant }}", "keyword3: {{ status }}"
    ),
    ("paid", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ total }}", "keyword3: {{ status }}"
    ),
    ("shipped", "wechat"): _wechat(
        "keyword1: {{ order_number }}",
        "keyword2: {{ carrier }}",
        "keyword3: {{ tracking_number }}",
    ),
    ("delivered", "wechat"): _wechat("keyword1: {{ order_number }}", "keyword2: {{ status }}"),
    ("refunded", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ refund_amount }}", "keyword3: {{ status }}"
    ),
    ("partially_refunded", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ refund_amount }}", "keyword3: {{ status }}"
    ),
    ("refund_declined", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ status }}", "keyword3: {{ reason }}"
    ),
    ("return_agreed", "wechat"): _wechat(
        "keyword1: {{ order_number }}", "keyword2: {{ status }}", "keyword3: {{ return_address }}"
    ),
}

_EN: dict[tuple[str, str], Wording] = {
    ("paid", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }} is paid ({{ total }}); we will ship it "
        "soon.{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("shipped", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }} has shipped: {{ carrier }} "
        "{{ tracking_number }}.{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("delivered", "sms"): Wording(
        "", "[{{ shop_name }}] Order {{ order_number }} was delivered. Thank you!"
    ),
    ("refunded", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }}: {{ refund_amount }} refunded to your "
        "original payment method.",
    ),
    ("partially_refunded", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }}: part of it refunded, {{ refund_amount }} "
        "in all, to your original payment method.{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("refund_declined", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }}: your refund request was declined: "
        "{{ reason }}{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("return_agreed", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }}: your return is agreed. Send the goods to "
        "{{ return_address }}, then give the waybill on your order.{% if order_url %} "
        "{{ order_url }}{% endif %}",
    ),
    ("address_changed", "sms"): Wording(
        "",
        "[{{ shop_name }}] Order {{ order_number }} now goes to: {{ address }}. If you did not "
        "ask for this, contact us.{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("address_changed", "email"): Wording(
        "{{ shop_name }}: order {{ order_number }} goes to a new address",
        "Hello,\n\nOrder {{ order_number }} now goes to:\n{{ address }}\n\nIf you did not "
        "ask for this, contact us.{% if order_url %}\n\nYour order: {{ order_url }}"
        "{% endif %}\n\n{{ shop_name }}",
    ),
    ("back_in_stock", "sms"): Wording(
        "",
        "[{{ shop_name }}] {{ product }}{% if variant %} ({{ variant }}){% endif %} is back "
        "in stock.{% if order_url %} {{ order_url }}{% endif %}",
    ),
    ("back_in_stock", "email"): Wording(
        "{{ shop_name }}: {{ product }} is back in stock",
        "Hello,\n\n{{ product }}{% if variant %} ({{ variant }}){% endif %}, which you asked "
        "about, is back in stock while it lasts.{% if order_url %}\n\n{{ order_url }}"
        "{% endif %}\n\n{{ shop_name }}",
    ),
    ("paid", "email"): Wording(
        "{{ shop_name }}: order {{ order_number }} is paid",
        "Hello,\n\nWe received {{ total }} for order {{ order_number }} and will ship it soon."
        "{% if order_url %}\n\nYour order: {{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("shipped", "email"): Wording(
        "{{ shop_name }}: order {{ order_number }} has shipped",
        "Hello,\n\nOrder {{ order_number }} is on its way with {{ carrier }}, tracking number "
        "{{ tracking_number }}.{% if order_url %}\n\nTrack it: {{ order_url }}{% endif %}"
        "\n\n{{ shop_name }}",
    ),
    ("delivered", "email"): Wording(
        "{{ shop_name }}: order {{ order_number }} was delivered",
        "Hello,\n\nOrder {{ order_number }} was delivered. Thank you for shopping with us."
        "{% if order_url %}\n\nYour order: {{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("refunded", "email"): Wording(
        "{{ shop_name }}: order {{ order_number }} is refunded",
        "Hello,\n\n{{ refund_amount }} for order {{ order_number }} goes back to your original "
        "payment method.{% if order_url %}\n\nYour order: {{ order_url }}{% endif %}"
        "\n\n{{ shop_name }}",
    ),
    ("partially_refunded", "email"): Wording(
        "{{ shop_name }}: part of order {{ order_number }} is refunded",
        "Hello,\n\nPart of order {{ order_number }} is refunded: {{ refund_amount }} in all goes "
        "back to your original payment method.{% if order_url %}\n\nYour order: "
        "{{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
    ("refund_declined", "email"): Wording(
        "{{ shop_name }}: the refund of order {{ order_number }} was declined",
        "Hello,\n\nYour refund request for order {{ order_number }} was declined. The "
        "seller says: {{ reason }}{% if order_url %}\n\nYour order: {{ order_url }}"
        "{% endif %}\n\n{{ shop_name }}",
    ),
    ("return_agreed", "email"): Wording(
        "{{ shop_name }}: the return of order {{ order_number }} is agreed",
        "Hello,\n\nThe seller agrees to take back the goods of order {{ order_number }}. Send "
        "them to:\n{{ return_address }}\n\nThen give the carrier and waybill on your order."
        "{% if order_url %}\n\nYour order: {{ order_url }}{% endif %}\n\n{{ shop_name }}",
    ),
}
# A WeChat template's fields are the same whatever the language of the values.
_EN.update({key: wording for key, wording in _ZH.items() if key[1] == "wechat"})

DEFAULTS: dict[str, dict[tuple[str, str], Wording]] = {"zh_CN": _ZH, "en": _EN}

VARIABLES = (
    "shop_name",
    "order_number",
    "total",
    "refund_amount",
    "status",
    "carrier",
    "tracking_number",
    "order_url",
    "reason",
    "return_address",
    "address",
    "event",
)
# What a back-in-stock message knows: no order, a product (its link is ``order_url``, the
# message's own link on every channel).
STOCK_VARIABLES = ("shop_name", "product", "variant", "status", "order_url", "event")


def variables_for(event: str) -> tuple[str, ...]:
    """The variables a message of ``event`` may use."""
    return STOCK_VARIABLES if event == "back_in_stock" else VARIABLES


def yuan(fen: int) -> str:
    """Integer fen as the buyer reads money: ``¥129.00``."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100}.{fen % 100:02d}"


def default_wording(event: str, channel: str, locale: str = "zh_CN") -> Wording:
    """The built-in words of one (event, channel), in the shop's language."""
    return DEFAULTS.get(locale, _ZH)[(event, channel)]


def effective_wording(
    event: str, channel: str, template: Any | None, locale: str = "zh_CN"
) -> Wording:
    """A saved ``MessageTemplate``'s words, with the built-in ones where a part is empty."""
    default = default_wording(event, channel, locale)
    if template is None:
        return default
    return Wording(template.subject or default.subject, template.body or default.body)


def sample_context(event: str = "shipped") -> dict[str, Any]:
    """Plausible values of every variable ``event`` has, to try a template before it is
    saved (one that names another event's variable is refused then, not when sent)."""
    values = {
        "shop_name": "示例小店",
        "order_number": "KD202611250000000001",
        "total": yuan(25800),
        "refund_amount": yuan(25800),
        "status": "已发货",
        "carrier": "顺丰速运",
        "tracking_number": "SF1234567890123",
        "order_url": "https://shop.example.com/shop/orders/KD202611250000000001",
        "reason": "商品已发出，请留意物流",
        "return_address": "售后组 0571-88886666 杭州市西湖区文三路 90 号",
        "address": "王芳 13700137000 浙江省杭州市西湖区文二路 9 号",
        "product": "龙井茶",
        "variant": "大罐",
        "event": event,
    }
    return {name: values[name] for name in variables_for(event)}


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """A template's source compiled once: a campaign renders the same one per recipient."""
    return _environment.from_string(source)


def _render_text(source: str, context: Mapping[str, Any], part: str = "body") -> str:
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise ValidationError(
            f"the {part} may be at most {MAX_TEMPLATE_LENGTH} characters",
            {part: [f"longer than {MAX_TEMPLATE_LENGTH} characters"]},
            reason="template_long",
            detail={"field": part, "most": MAX_TEMPLATE_LENGTH},
        )
    try:
        text = _compiled(source).render(**context).strip()
    except TemplateError as exc:
        # SecurityError (a forbidden attribute), UndefinedError, TemplateSyntaxError, ...
        reason = exc.message or type(exc).__name__
        where = f" on line {exc.lineno}" if isinstance(exc, TemplateSyntaxError) else ""
        known = ", ".join(context)  # the variables this message has
        raise ValidationError(
            f"the {part} template cannot be used{where}: {reason}; it may use {known}",
            {part: [reason]},
            reason="template_unusable",
            detail={"field": part, "problem": reason, "variables": known},
        ) from None
    if len(text) > MAX_OUTPUT_LENGTH:
        raise ValidationError(
            f"the rendered {part} is longer than {MAX_OUTPUT_LENGTH} characters",
            {part: ["too long"]},
            reason="template_output_long",
            detail={"field": part, "most": MAX_OUTPUT_LENGTH},
        )
    return text


def wechat_fields(body: str, context: Mapping[str, Any]) -> dict[str, str]:
    """Fill a WeChat body (``field: text`` per line) into the template message's fields."""
    fields: dict[str, str] = {}
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        match = _FIELD_LINE.match(line)
        if match is None:
            raise ValidationError(
                f"line {number} of a WeChat template must read 'field: text', e.g. "
                "'keyword1: {{ order_number }}'",
                {"body": [f"line {number}: {line.strip()[:60]}"]},
                reason="wechat_line",
                detail={"line": number},
            )
        name, source = match.groups()
        if name in fields:
            raise ValidationError(
                f"field {name!r} appears twice",
                {"body": [f"line {number}: duplicate {name}"]},
                reason="wechat_field_twice",
                detail={"name": name, "line": number},
            )
        fields[name] = _render_text(source, context)
    if not fields:
        raise ValidationError(
            "a WeChat template needs at least one 'field: text' line",
            {"body": ["empty"]},
            reason="wechat_no_fields",
        )
    return fields


def _html(text: str, url: str | None) -> str:
    """The plain text as simple HTML: paragraphs, line breaks and the order link."""
    paragraphs = []
    for block in text.split("\n\n"):
        html = str(escape(block)).replace("\n", "<br>\n")
        if url:
            link = str(escape(url))
            html = html.replace(link, f'<a href="{link}">{link}</a>')
        paragraphs.append(f"<p>{html}</p>")
    return (
        "<!doctype html>\n<html><body style=\"font-family:-apple-system,'PingFang SC',"
        'sans-serif;font-size:15px;line-height:1.6;color:#222">\n'
        + "\n".join(paragraphs)
        + "\n</body></html>\n"
    )


def render(channel: str, wording: Wording, context: Mapping[str, Any]) -> RenderedMessage:
    """Render one message for ``channel``; a broken template raises ``ValidationError``."""
    url = context.get("order_url") or None
    if channel == "wechat":
        fields = wechat_fields(wording.body, context)
        return RenderedMessage(subject="", text="", wechat_fields=fields, url=url)
    text = _render_text(wording.body, context)
    if not text:
        raise ValidationError("the message renders to nothing", {"body": ["empty"]})
    if channel == "sms":
        return RenderedMessage(subject="", text=text, url=url)
    subject = " ".join(_render_text(wording.subject, context, "subject").split())
    if not subject:
        raise ValidationError("an e-mail needs a subject", {"subject": ["empty"]})
    return RenderedMessage(subject=subject, text=text, html=_html(text, url), url=url)


def check(event: str, channel: str, wording: Wording) -> None:
    """Render ``wording`` with sample data; raise ``ValidationError`` if it cannot be used."""
    render(channel, wording, sample_context(event))
