"""Demo customers, a tag, a coupon and a webhook command: what a campaign needs to be tried.

``flask seed-crm`` gives the demo buyer account (and a few WeChat followers without a site
account) a WeChat openid the WeChat sandbox knows, tags them all ``DEMO_TAG`` and creates the
coupon ``DEMO_COUPON``. ``flask subscribe-webhook URL`` subscribes a local receiver. Both can
be run again safely.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from examples.host_site.extensions import db
from examples.host_site.models import User
from koudai_flask.models import Coupon
from koudai_flask.services import customers, identities, tags

# The template the WeChat sandbox accepts (a real account registers its own).
DEMO_TEMPLATE_ID = "DEMO_TPL_NEW_ARRIVALS"
# The back-in-stock (到货提醒) template the sandbox accepts too.
DEMO_STOCK_TEMPLATE_ID = "DEMO_TPL_BACK_IN_STOCK"
DEMO_TAG = "老客 Regulars"
DEMO_COUPON = "CAMELLIA10"
DEMO_COUPON_OFF = 1000  # fen: ¥10 off
DEMO_COUPON_MIN_SPEND = 5000  # fen: on goods of ¥50 or more
OWNER_EMAIL = "owner@example.com"
# The demo buyer account's openid, and followers known only by WeChat.
BUYER_OPENIDS = {"buyer@example.com": "oDemoBuyer00000000000000001"}
FOLLOWER_OPENIDS = {
    "张三 WeChat follower": "oDemoFollower000000000000001",
    "王五 WeChat follower": "oDemoFollower000000000000002",
}


def demo_openids() -> set[str]:
    """Every openid the WeChat sandbox should know as a follower of the demo account."""
    return set(BUYER_OPENIDS.values()) | set(FOLLOWER_OPENIDS.values())


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        raise click.ClickException(f"no user {email}: run `flask seed-users` first")
    return user


def seed_customers() -> list[int]:
    """The demo's tagged customers (created or found), buyer account first."""
    ids = []
    for email, openid in BUYER_OPENIDS.items():
        user = _user(email)
        customer = customers.for_user(str(user.id), name=user.name)
        ids.append(identities.link_identity("wechat_openid", openid, customer_id=customer.id))
    for name, openid in FOLLOWER_OPENIDS.items():
        ids.append(identities.link_identity("wechat_openid", openid, name=name))
    for customer_id in ids:
        tags.add_tag(customer_id, DEMO_TAG, actor_id="demo")
    return ids


def seed_coupon() -> bool:
    """The demo coupon; False when it exists already."""
    from koudai_flask.services.marketing.coupon_admin import CouponRules, create_coupon
    from koudai_flask.services.transaction import current_session

    if current_session().scalar(select(Coupon.id).where(Coupon.code == DEMO_COUPON)):
        return False
    rules = CouponRules(
        name="山茶回馈 Camellia thanks",
        kind="fixed",
        value=DEMO_COUPON_OFF,
        min_spend=DEMO_COUPON_MIN_SPEND,
        per_customer_limit=1,
    )
    create_coupon(str(_user(OWNER_EMAIL).id), DEMO_COUPON, rules)
    return True


@click.command("seed-crm")
@with_appcontext
def seed_crm() -> None:
    """Tag the demo buyer and followers (with WeChat openids) and create the demo coupon."""
    ids = seed_customers()
    click.echo(f"customers tagged {DEMO_TAG!r}: {len(ids)} (each with a WeChat openid)")
    made = seed_coupon()
    click.echo(f"coupon {DEMO_COUPON} {'created' if made else 'exists'}")


@click.command("subscribe-webhook")
@click.argument("url")
@click.option("--event", "events", multiple=True, default=["order.paid"], show_default=True)
@with_appcontext
def subscribe_webhook(url: str, events: tuple[str, ...]) -> None:
    """Subscribe URL to koudai's events for the demo owner; prints the secret once."""
    from koudai_flask.errors import ValidationError
    from koudai_flask.services import webhooks

    owner = str(_user(OWNER_EMAIL).id)
    try:
        created = webhooks.create_subscription(url, events, owner_user_id=owner, actor=owner)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(created.secret)
