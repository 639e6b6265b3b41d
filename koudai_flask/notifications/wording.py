"""The built-in words of every buyer message, by language, event and channel: what a shop
says until staff write their own on the back office's buyer messages page. Chinese SMS open
with the sender's 【signature】 (the shop's name), or carriers reject them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    """A template's source: subject (e-mail only) and body."""

    subject: str
    body: str


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
