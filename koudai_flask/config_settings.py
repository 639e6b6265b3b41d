"""The ``KOUDAI_*`` settings themselves: each one's default, meaning and check, in the order
the README's configuration table gives them. Read through :mod:`koudai_flask.config`."""

from __future__ import annotations

from koudai_flask.config_checks import (
    Setting,
    boolean,
    hex_color,
    non_empty_str,
    non_negative_int,
    one_of,
    optional_dict,
    optional_names,
    optional_non_negative_int,
    optional_seconds,
    optional_str,
    options_dict,
    password_method,
    positive_int,
    positive_seconds,
    rfm_thresholds,
    seconds,
    time_zone,
    url_prefix,
)
from koudai_flask.connectors.logistics.settings import validate_kuaidi100
from koudai_flask.connectors.wechat.settings import validate_wechat
from koudai_flask.connectors.weibo.settings import validate_weibo

SETTINGS: dict[str, Setting] = {
    "KOUDAI_DATABASE_URI": Setting(
        None,
        "Database for koudai's own engine when no host `db` is given "
        "(default: SQLALCHEMY_DATABASE_URI, else sqlite in the instance folder).",
        optional_str,
    ),
    "KOUDAI_ENGINE_OPTIONS": Setting(
        {},
        "Keyword arguments for koudai's own engine (e.g. pool_size), when no host `db` is given; "
        "the pool hands out the last returned connection first (pool_use_lifo, off with False).",
        options_dict,
    ),
    "KOUDAI_REGISTER_BLUEPRINTS": Setting(
        True, "Register the four blueprints at the prefixes below.", boolean
    ),
    "KOUDAI_SHOP_URL_PREFIX": Setting("/shop", "Mount point of the mobile shop.", url_prefix),
    "KOUDAI_ADMIN_URL_PREFIX": Setting(
        "/shop-admin", "Mount point of the back office.", url_prefix
    ),
    "KOUDAI_API_URL_PREFIX": Setting("/shop-api/v1", "Mount point of the REST API.", url_prefix),
    "KOUDAI_API_RATE_LIMIT": Setting(
        600, "Requests one API key may make per KOUDAI_API_RATE_WINDOW.", positive_int
    ),
    "KOUDAI_API_RATE_WINDOW": Setting(60, "Seconds of an API key's rate-limit window.", seconds),
    "KOUDAI_API_RATE_STORAGE": Setting(
        "auto",
        "Where API rate-limit counters live: 'redis' (KOUDAI_REDIS_URL, shared by every "
        "process), 'memory' (per process) or 'auto' (redis when KOUDAI_JOBS = 'rq').",
        one_of("auto", "redis", "memory"),
    ),
    "KOUDAI_API_IDEMPOTENCY_TIMEOUT": Setting(
        30,
        "Seconds a POST repeated with the same Idempotency-Key waits for the first one to "
        "finish; a first one unfinished after this long is taken over.",
        seconds,
    ),
    "KOUDAI_HOOKS_URL_PREFIX": Setting(
        "/shop-hooks", "Mount point of inbound callbacks (payments, logistics).", url_prefix
    ),
    "KOUDAI_STATIC_URL_PATH": Setting(
        "/koudai-static", "URL path of the library's static files.", url_prefix
    ),
    "KOUDAI_SHOP_BASE_TEMPLATE": Setting(
        "koudai/shop/base.html",
        "Layout every shop page extends; point it at your own to re-skin the shop.",
        non_empty_str,
    ),
    "KOUDAI_ADMIN_BASE_TEMPLATE": Setting(
        "koudai/admin/base.html", "Layout every back-office page extends.", non_empty_str
    ),
    "KOUDAI_SHOP_NAME": Setting(
        "Koudai Shop", "Shop name (the owner's shop profile overrides it).", non_empty_str
    ),
    "KOUDAI_PRIMARY_COLOR": Setting(
        "#e4393c", "Theme colour as #rrggbb (the shop profile overrides it).", hex_color
    ),
    "KOUDAI_LOGO_URL": Setting(
        None, "Logo image URL (the shop profile overrides it).", optional_str
    ),
    "KOUDAI_DEFAULT_LOCALE": Setting(
        "zh_CN", "Language of the shop unless the buyer picks another.", one_of("zh_CN", "en")
    ),
    "KOUDAI_GUEST_CHECKOUT": Setting(True, "Let buyers check out without an account.", boolean),
    "KOUDAI_SHIPPING_FEE": Setting(
        1000,
        "Flat shipping fee in fen, once per order, for goods without a shipping template.",
        non_negative_int,
    ),
    "KOUDAI_FREE_SHIPPING_OVER": Setting(
        9900,
        "Order subtotal in fen from which the whole order ships free; None: never.",
        optional_non_negative_int,
    ),
    "KOUDAI_PASSWORD_HASH": Setting(
        "scrypt",
        "How staff and buyer passwords are hashed (werkzeug's method and cost): 'scrypt', "
        "'scrypt:<n>:<r>:<p>' or 'pbkdf2:sha256:<iterations>'. Stored hashes keep their own; "
        "a cheap one is for test suites only.",
        password_method,
    ),
    "KOUDAI_PASSWORD_RESET_MAX_AGE": Setting(
        3600, "Seconds a buyer's password-reset link stays valid.", seconds
    ),
    "KOUDAI_WECHAT": Setting(
        None,
        "WeChat Official Account (appid, secret, oauth_url, api_url): enables the silent "
        "snsapi_base login inside WeChat; with 'token' (and 'encoding_aes_key' for safe "
        "mode) also the server endpoint <hooks prefix>/wechat/oa and the inbox; 'subscribe_tag' "
        "and 'scene_tags' name the tags followers get; None turns it off.",
        validate_wechat,
    ),
    "KOUDAI_WEIBO": Setting(
        None,
        "Weibo reputation monitoring of the brand account (access_token, uid, api_url, "
        "search_url, search_token, poll_interval, count, max_pages, timeout); None turns it off.",
        validate_weibo,
    ),
    "KOUDAI_TIMEZONE": Setting("Asia/Shanghai", "Zone in which times are shown.", time_zone),
    "KOUDAI_JOBS": Setting(
        "inline",
        "'inline' runs jobs right after commit in-process; 'rq' enqueues them on Redis.",
        one_of("inline", "rq"),
    ),
    "KOUDAI_INLINE_SCHEDULE": Setting(
        "after_request",
        "With inline jobs, when the periodic jobs run: 'after_request' (when due, after a "
        "request) or 'thread' (a background thread of each process, from its first request).",
        one_of("after_request", "thread"),
    ),
    "KOUDAI_REDIS_URL": Setting(
        "redis://127.0.0.1:6379/0", "Redis used when KOUDAI_JOBS = 'rq'.", non_empty_str
    ),
    "KOUDAI_QUEUE_NAME": Setting("koudai", "Name of the RQ queue.", non_empty_str),
    "KOUDAI_RESERVATION_TTL": Setting(
        1800, "Seconds an unpaid order holds its stock before it is cancelled.", seconds
    ),
    "KOUDAI_EXPIRY_INTERVAL": Setting(
        60, "Seconds between runs of the reservation-expiry job.", seconds
    ),
    "KOUDAI_AUTO_COMPLETE_AFTER": Setting(
        10 * 86400,
        "Seconds after an own-shop order was shipped (or last changed) that it is completed "
        "if the buyer has not confirmed receipt, as marketplaces do; None never.",
        optional_seconds,
    ),
    "KOUDAI_OUTBOX_KEEP": Setting(
        30 * 86400,
        "Seconds a handled outbox event is kept before the hourly prune deletes it; None "
        "keeps every event.",
        optional_seconds,
    ),
    "KOUDAI_RELAY_INTERVAL": Setting(
        60, "Seconds between runs of the outbox relay (it re-sends what Redis lost).", seconds
    ),
    "KOUDAI_RELAY_GRACE": Setting(
        30,
        "Seconds an enqueued outbox event may wait before the relay checks whether its job "
        "still exists in Redis.",
        seconds,
    ),
    "KOUDAI_OUTBOX_BATCH": Setting(500, "Outbox rows the relay handles per pass.", positive_int),
    "KOUDAI_SYNC_INTERVAL": Setting(
        60,
        "Seconds between channel sync ticks: TMC pull, order import, ERP stock and shipment "
        "pull, and a sweep of listings or orders still waiting to be pushed.",
        seconds,
    ),
    "KOUDAI_RECONCILE_INTERVAL": Setting(
        3600,
        "Seconds between full reconciles of every channel (read all quantities, repair drift).",
        seconds,
    ),
    "KOUDAI_SYNC_RETRY_BASE": Setting(
        2.0,
        "First back-off of a channel job after a temporary failure; doubles each attempt, "
        "at most 5 minutes. A rate limit waits what the channel asked instead.",
        positive_seconds,
    ),
    "KOUDAI_SYNC_MAX_ATTEMPTS": Setting(
        8, "Attempts of a channel job before it becomes a dead letter.", positive_int
    ),
    "KOUDAI_SYNC_LOCK_TIMEOUT": Setting(
        60,
        "Seconds a channel's sync lock lives: one job at a time per channel, and the lock of a "
        "killed worker frees itself after this.",
        seconds,
    ),
    "KOUDAI_SYNC_CURSOR_BUFFER": Setting(
        300,
        "Seconds an incremental order import steps back before its last position, so an "
        "order modified at the edge of a window is never missed.",
        seconds,
    ),
    "KOUDAI_DEFAULT_LOCATION": Setting(
        "main", "Code of the stock location used when a call names none.", non_empty_str
    ),
    "KOUDAI_ORDER_NUMBER_PREFIX": Setting("KD", "Prefix of order numbers.", non_empty_str),
    "KOUDAI_MEDIA_FOLDER": Setting(
        None, "Folder of product images (default: <instance>/koudai-media).", optional_str
    ),
    "KOUDAI_PAGE_SIZE": Setting(20, "Products per page in the shop.", positive_int),
    "KOUDAI_WECHATPAY": Setting(
        None,
        "WeChat Pay API v3 settings (mchid, appid, apiv3_key, merchant_private_key, "
        "merchant_serial_no, platform_public_keys, gateway_url); None turns it off.",
        optional_dict,
    ),
    "KOUDAI_ALIPAY": Setting(
        None,
        "Alipay settings (app_id, app_private_key, alipay_public_key, gateway_url); "
        "None turns it off.",
        optional_dict,
    ),
    "KOUDAI_KUAIDI100": Setting(
        None,
        "Kuaidi100 logistics tracking (customer, key, salt, callback_url, query_url, "
        "subscribe_url, timeout, poll_interval, poll_batch); None turns tracking off.",
        validate_kuaidi100,
    ),
    "KOUDAI_SMS": Setting(
        None,
        "Text messages to buyers: {'provider': 'log'} or a dotted path to a provider "
        "class with its settings; None turns SMS off.",
        optional_dict,
    ),
    "KOUDAI_MAIL": Setting(
        None,
        "E-mail to buyers over SMTP (host, port, username, password, sender, starttls); "
        "None turns e-mail off.",
        optional_dict,
    ),
    "KOUDAI_STOCK_ALERT_INTERVAL": Setting(
        300,
        "Seconds between sweeps that tell buyers who asked (到货提醒) that a sold-out SKU is "
        "back in stock.",
        seconds,
    ),
    "KOUDAI_STOCK_ALERT_WECHAT_TEMPLATE": Setting(
        None,
        "The Official Account's template id for back-in-stock messages (keyword1 the "
        "product, keyword2 the variant, keyword3 the stock); None: those go by SMS or e-mail.",
        optional_str,
    ),
    "KOUDAI_WEBHOOKS": Setting(
        False,
        "Outbound webhooks: subscribe their fan-out to the order, stock and customer events "
        "(every such event then goes through the job system) and sweep due deliveries.",
        boolean,
    ),
    "KOUDAI_WEBHOOKS_ALLOW_PRIVATE": Setting(
        False,
        "Let webhook URLs reach private, loopback, link-local and reserved addresses "
        "(development and tests only).",
        boolean,
    ),
    "KOUDAI_WEBHOOKS_TIMEOUT": Setting(
        10.0, "Seconds a webhook receiver has to connect and to answer.", positive_seconds
    ),
    "KOUDAI_WEBHOOKS_RETRY_BASE": Setting(
        60.0,
        "Wait before the second attempt of a failed webhook delivery; doubles with each "
        "attempt, at most 6 hours.",
        positive_seconds,
    ),
    "KOUDAI_WEBHOOKS_MAX_ATTEMPTS": Setting(
        8, "Attempts of one webhook delivery before it is given up.", positive_int
    ),
    "KOUDAI_WEBHOOKS_DISABLE_AFTER": Setting(
        15,
        "Consecutive failed webhook attempts after which a subscription is disabled and its "
        "owner told.",
        positive_int,
    ),
    "KOUDAI_WEBHOOKS_SWEEP_INTERVAL": Setting(
        30, "Seconds between sweeps that send webhook deliveries whose retry is due.", seconds
    ),
    "KOUDAI_CRM_RFM_THRESHOLDS": Setting(
        {
            "recency_days": [30, 90, 180, 365],
            "frequency": [2, 3, 5, 10],
            "monetary": [10000, 50000, 200000, 500000],
        },
        "RFM score boundaries: days since the last order (at most 30 scores 5, ..., over "
        "365 scores 1), counted orders (10 or more scores 5) and spend in fen (500000 or "
        "more scores 5); a customer without a counted order scores 0.",
        rfm_thresholds,
    ),
    "KOUDAI_CRM_RECOMPUTE_INTERVAL": Setting(
        86400, "Seconds between full recomputes of the rule tags (nightly).", seconds
    ),
    "KOUDAI_MARKETING_PLUGINS": Setting(
        None,
        "Names of the marketing plugins checkout applies (limited_price, full_reduction, "
        "coupon, or one registered under koudai_flask.marketing); None: every installed one.",
        optional_names,
    ),
    "KOUDAI_LOW_STOCK_THRESHOLD": Setting(
        3, "Available units at or below which a SKU counts as low stock.", non_negative_int
    ),
    "KOUDAI_OFFLINE_PAYMENT": Setting(
        True, "Offer cash on delivery / bank transfer, marked paid by staff.", boolean
    ),
    "KOUDAI_SHOP_INITIALLY_OPEN": Setting(
        True,
        "Whether buyers may shop before the owner has opened or closed the shop in the "
        "back office (the set-up wizard's last step); once the owner chose, that choice wins. "
        "False shows buyers a 'coming soon' page while staff preview the shop.",
        boolean,
    ),
    "KOUDAI_FUNNEL_EVENTS": Setting(
        True, "Record the shop's funnel events (visits, product views, cart, checkout).", boolean
    ),
    "KOUDAI_FUNNEL_BATCH": Setting(
        200,
        "Funnel events a process buffers before it writes them in one INSERT.",
        positive_int,
    ),
    "KOUDAI_FUNNEL_FLUSH_INTERVAL": Setting(
        5.0,
        "Seconds a buffered funnel event may wait: the first request ending after this "
        "writes the buffer (and every process writes its buffer when it exits).",
        positive_seconds,
    ),
    "KOUDAI_FUNNEL_ROLLUP_INTERVAL": Setting(
        600, "Seconds between recomputes of today's and yesterday's funnel rollups.", seconds
    ),
    "KOUDAI_FUNNEL_ATTRIBUTION_MAX_AGE": Setting(
        7 * 86400,
        "Seconds after a click on a campaign link during which the buyer's steps count "
        "for that campaign.",
        seconds,
    ),
    "KOUDAI_CAMPAIGN_BATCH": Setting(
        100,
        "Recipients one campaign send job handles (at most the campaign's rate).",
        positive_int,
    ),
    "KOUDAI_CAMPAIGN_INTERVAL": Setting(
        30,
        "Seconds between sweeps that send campaign batches whose time has come (and those "
        "a lost job left behind).",
        seconds,
    ),
    "KOUDAI_CAMPAIGN_LINK_BASE": Setting(
        None,
        "The shop's absolute URL (https://example.com/shop) that links made outside a request "
        "start with: campaign links, back-in-stock messages, product webhooks' URLs; None: "
        "the host of the request, with KOUDAI_SHOP_URL_PREFIX.",
        optional_str,
    ),
    "KOUDAI_CAMPAIGN_LINK_MAX_AGE": Setting(
        30 * 86400, "Seconds a campaign's tracked link keeps counting clicks.", seconds
    ),
}
