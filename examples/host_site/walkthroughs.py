"""The walkthroughs ``run_demo`` prints under the demo's URLs: what to click, in which order,
to see a campaign and the after-sales flows work end to end against the sandboxes."""

from __future__ import annotations


def print_campaign_walkthrough(base: str, wechat: str) -> None:
    from examples.host_site.demo_crm import DEMO_COUPON, DEMO_TAG, DEMO_TEMPLATE_ID

    print("A campaign, end to end (owner in one browser, buyer in another):")
    print(f"  1. owner: {base}/shop-admin/customers/segments/new  segment of tag {DEMO_TAG!r}")
    print(f"  2. owner: {base}/shop-admin/campaigns/new  WeChat, that segment,")
    print(f"     template id {DEMO_TEMPLATE_ID}, then Send now")
    print(f"  3. buyer: sign in, open {wechat}/messages and click the message's link")
    print(f"  4. buyer: add to cart, checkout with coupon {DEMO_COUPON} (¥10 off from ¥50),")
    print("     pay with WeChat Pay (sandbox)")
    print(f"  5. owner: {base}/shop-admin/funnel  push_sent → ... → order_paid")


def print_after_sales_walkthrough(base: str) -> None:
    print("After-sales, end to end (buyer in one browser, owner in another):")
    print(f"  1. buyer: buy two of something, pay; owner: ship it from {base}/shop-admin/orders")
    print("  2. buyer: on the order page, 申请退款: one of the two, 退货退款")
    print(f"  3. owner: {base}/shop-admin/orders?status=refunding  同意退货 (the buyer gets")
    print("     the shop's return address); buyer: give a waybill on the order page")
    print("     (the demo courier carries the return parcel too: 运输中, then 已签收)")
    print("  4. owner: once the parcel is signed for, 'the parcel came back' is ticked and the")
    print("     items are filled in: refund, and the order is shipped again, one unit back on")
    print("     the shelf, the buyer reads 已退 1 件")
    print(f"Packing: {base}/shop-admin/orders?status=paid  tick orders, 打印所选订单的发货单")
    print("  (the pick list, then a slip per order, each on its own page when printed);")
    print(f"  then {base}/shop-admin/orders/scan  scan (or type) a slip's number, then a waybill")
    print(f"Stocktake: {base}/shop-admin/stocktake  scan (or type) a SKU code, e.g. DEMO-001-0-S")
    print(
        f"Best sellers (热销商品): {base}/shop-admin/best-sellers  a month of sample orders:"
        " what sells, on which channel, and (order by 最先卖完) what runs out first"
    )
    print(
        "Back in stock (到货提醒): buyer, on a product with a sold-out size, 到货通知我; owner,"
        f" {base}/shop-admin/stock?wanted=1  adjust that SKU up: within seconds the WeChat"
        " sandbox's /messages shows the message (or the log, a text)"
    )
    print(
        f"Shipping templates: {base}/shop-admin/shipping  shoes and bags ship by 鞋包快递:"
        " check out to 新疆 and the fee rises, to 香港 and the order is refused"
    )
