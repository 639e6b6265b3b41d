"""SQLAlchemy models of koudai_flask, all on the library's own metadata (tables koudai_*)."""

from __future__ import annotations

from koudai_flask.models.backoffice import (
    CredentialCache,
    MessageTemplate,
    Notification,
    OrderMemo,
    OrderNote,
    PackingSlip,
    Role,
    ShipmentLine,
    TrackingEvent,
)
from koudai_flask.models.base import Base, metadata
from koudai_flask.models.catalog import Category, Product, ProductImage, ShippingTemplate, Sku
from koudai_flask.models.channels import (
    Channel,
    ChannelListing,
    ChannelOrder,
    ChannelReceipt,
    DriftRecord,
    SyncCursor,
    SyncFailure,
)
from koudai_flask.models.crm import (
    CustomerMerge,
    CustomerNote,
    CustomerTag,
    IdentityVerification,
    Segment,
    Tag,
    TagHistory,
)
from koudai_flask.models.customers import Customer, CustomerIdentity
from koudai_flask.models.funnel import (
    Campaign,
    CampaignRecipient,
    FunnelDaily,
    FunnelEvent,
    OrderAttribution,
)
from koudai_flask.models.inventory import Location, Reservation, StockLevel, StockMovement
from koudai_flask.models.marketing import (
    Coupon,
    CouponBatch,
    CouponCustomerUse,
    CouponRedemption,
    LimitedPrice,
    OrderDiscount,
    Promotion,
)
from koudai_flask.models.onboarding import MerchantCredential, OnboardingStep, ShopDoor
from koudai_flask.models.orders import Order, OrderEvent, OrderLine, Payment, Refund, Shipment
from koudai_flask.models.outbox import OutboxEvent
from koudai_flask.models.platform import ApiKey, IdempotencyRecord
from koudai_flask.models.shop import (
    Address,
    CartLine,
    Favourite,
    ProductReview,
    ShopProfile,
    StockAlert,
)
from koudai_flask.models.social import (
    AutoReplyRule,
    WechatFollower,
    WechatMessage,
    WeiboAlert,
    WeiboCursor,
    WeiboKeywordRule,
    WeiboPost,
)
from koudai_flask.models.staff import AuditEntry, StaffMember
from koudai_flask.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "Coupon",
    "CouponBatch",
    "CouponCustomerUse",
    "CouponRedemption",
    "LimitedPrice",
    "OrderDiscount",
    "Promotion",
    "CustomerMerge",
    "CustomerNote",
    "CustomerTag",
    "IdentityVerification",
    "Segment",
    "Tag",
    "TagHistory",
    "AutoReplyRule",
    "WechatFollower",
    "WechatMessage",
    "WeiboAlert",
    "WeiboCursor",
    "WeiboKeywordRule",
    "WeiboPost",
    "ApiKey",
    "IdempotencyRecord",
    "CredentialCache",
    "MessageTemplate",
    "Notification",
    "OrderMemo",
    "OrderNote",
    "PackingSlip",
    "Role",
    "ShipmentLine",
    "TrackingEvent",
    "Address",
    "CartLine",
    "ShopProfile",
    "Favourite",
    "ProductReview",
    "StockAlert",
    "AuditEntry",
    "Base",
    "Category",
    "Channel",
    "ChannelListing",
    "ChannelOrder",
    "ChannelReceipt",
    "DriftRecord",
    "SyncFailure",
    "Customer",
    "CustomerIdentity",
    "Campaign",
    "CampaignRecipient",
    "FunnelDaily",
    "FunnelEvent",
    "OrderAttribution",
    "MerchantCredential",
    "OnboardingStep",
    "ShopDoor",
    "Location",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OutboxEvent",
    "Payment",
    "Product",
    "ProductImage",
    "Refund",
    "Reservation",
    "Shipment",
    "ShippingTemplate",
    "Sku",
    "StaffMember",
    "StockLevel",
    "StockMovement",
    "SyncCursor",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
