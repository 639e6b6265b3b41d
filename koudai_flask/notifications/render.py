"""The words of each buyer message, from staff-edited templates or the built-in defaults

Staff edit ``MessageTemplate`` rows in the back office, so their text is untrusted: it is
rendered by Jinja2's ``SandboxedEnvironment`` (no attribute tricks such as
``''.__class__``) with ``StrictUndefined`` (a misspelt variable is an error, not an empty
string). :func:`check` renders a template with sample data; the service refuses to save
one that fails, so a bad template is caught when it is written, not when a buyer pays.

A WeChat template message is not free text: the Official Account registers templates with
named fields (``keyword1``, ``thing2``, ...) and a message fills them (PROTOCOLS §3.3).
Its body is therefore one ``field: text`` line per field. The built-in words are in
:mod:`koudai_flask.notifications.wording`.
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
from koudai_flask.notifications.wording import DEFAULTS, Wording

__all__ = [
    "DEFAULTS",
    "MAX_OUTPUT_LENGTH",
    "MAX_TEMPLATE_LENGTH",
    "STOCK_VARIABLES",
    "VARIABLES",
    "RenderedMessage",
    "Wording",
    "check",
    "default_wording",
    "effective_wording",
    "render",
    "sample_context",
    "variables_for",
    "wechat_fields",
    "yuan",
]

# Long enough for any sensible message; bounds what one staff edit can make us send.
MAX_TEMPLATE_LENGTH = 4000
MAX_OUTPUT_LENGTH = 8000

_FIELD_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s?(.*)$")

_environment = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@dataclass(frozen=True)
class RenderedMessage:
    """One message ready for a channel: text for SMS and e-mail, fields for WeChat."""

    subject: str
    text: str
    html: str | None = None
    wechat_fields: dict[str, str] = field(default_factory=dict)
    url: str | None = None


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
    return DEFAULTS.get(locale, DEFAULTS["zh_CN"])[(event, channel)]


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
