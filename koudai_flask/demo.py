"""A demo catalog: categories, products with colour/size variants, stock and images.

Images are SVG files drawn here, so the demo needs no network and no imaging library.
"""

from __future__ import annotations

import os
import random
from xml.sax.saxutils import escape

from sqlalchemy import func, select, update

from koudai_flask.models import Category, Product, ShippingTemplate
from koudai_flask.services import catalog, shipping_templates
from koudai_flask.services.transaction import current_session, unit_of_work

CATEGORIES = [
    (
        "apparel",
        "服饰 Apparel",
        ["T恤 Tee", "卫衣 Hoodie", "衬衫 Shirt", "外套 Jacket", "连衣裙 Dress", "牛仔裤 Jeans"],
    ),
    (
        "shoes-bags",
        "鞋包 Shoes & bags",
        ["帆布鞋 Canvas shoes", "跑鞋 Runners", "双肩包 Backpack", "托特包 Tote"],
    ),
    ("home", "家居 Home", ["马克杯 Mug", "抱枕 Cushion", "香薰 Candle", "毛巾 Towel"]),
    ("food", "美食 Food", ["绿茶 Green tea", "红枣 Red dates", "坚果 Mixed nuts", "蜂蜜 Honey"]),
    (
        "digital",
        "数码 Digital",
        ["手机壳 Phone case", "数据线 USB cable", "耳机 Earphones", "充电宝 Power bank"],
    ),
]
COLORS = [
    ("红 Red", "#e4393c"),
    ("蓝 Blue", "#2d6cdf"),
    ("黑 Black", "#333333"),
    ("绿 Green", "#2e9d5b"),
    ("黄 Yellow", "#f2b705"),
    ("灰 Grey", "#8a8f98"),
]
SIZES = ["S", "M", "L", "XL"]
ADJECTIVES = [
    "经典 Classic",
    "轻盈 Light",
    "复古 Retro",
    "极简 Minimal",
    "限定 Limited",
    "春季 Spring",
    "城市 Urban",
    "山系 Outdoor",
]


def _svg(title: str, color: str, index: int) -> str:
    chinese, _, english = title.partition(" ")
    text = 'text-anchor="middle" font-family="sans-serif"'
    return "\n".join(
        [
            '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="600"'
            ' viewBox="0 0 600 600">',
            f'<rect width="600" height="600" fill="{color}"/>',
            f'<circle cx="{150 + (index * 37) % 300}" cy="{170 + (index * 53) % 200}" r="120"'
            ' fill="#ffffff" opacity="0.18"/>',
            '<rect x="60" y="380" width="480" height="150" rx="18" fill="#fff" opacity="0.9"/>',
            f'<text x="300" y="450" font-size="54" fill="#222" {text}>{escape(chinese)}</text>',
            f'<text x="300" y="505" font-size="34" fill="#555" {text}>{escape(english)}</text>',
            "</svg>",
            "",
        ]
    )


# Shoes and bags ship dearer to the far west, and not to 港澳台 (a shipping template).
REMOTE_TEMPLATE = {
    "name": "鞋包快递",
    "basis": "piece",
    "first": 1,
    "first_fee": 800,
    "additional": 1,
    "additional_fee": 400,
    "areas": [
        {
            "provinces": ["新疆", "西藏", "青海", "内蒙古", "甘肃", "宁夏"],
            "first": 1,
            "first_fee": 2000,
            "additional": 1,
            "additional_fee": 1000,
        }
    ],
    "excluded": ["台湾", "香港", "澳门"],
}


def seed_catalog(count: int = 36, *, seed: int = 2013) -> int:
    """Create ``count`` demo products unless demo products exist; returns how many."""
    from koudai_flask.blueprints.shop import media_folder

    session = current_session()
    if session.scalar(select(func.count()).select_from(Product)):
        return 0
    rng = random.Random(seed)
    bags = []  # shoes and bags ship by REMOTE_TEMPLATE
    folder = os.path.join(media_folder(), "demo")
    os.makedirs(folder, exist_ok=True)
    for position, (slug, name, _) in enumerate(CATEGORIES):
        if session.scalar(select(Category.id).where(Category.slug == slug)) is None:
            catalog.create_category(name, slug, position=position)
    for n in range(count):
        slug, _, kinds = CATEGORIES[n % len(CATEGORIES)]
        kind = kinds[(n // len(CATEGORIES)) % len(kinds)]
        adjective = ADJECTIVES[n % len(ADJECTIVES)]
        adjective_zh, adjective_en = adjective.split(" ", 1)
        kind_zh, kind_en = kind.split(" ", 1)
        title = f"{adjective_zh}{kind_zh} {adjective_en} {kind_en}"
        colors = rng.sample(COLORS, k=rng.randint(2, 3))
        sized = slug in ("apparel", "shoes-bags") and not kind.startswith(("双肩包", "托特包"))
        base_price = rng.choice([1900, 2900, 3900, 5900, 7900, 9900, 12900, 19900])
        images = []
        for i, (_, hex_color) in enumerate(colors):
            filename = f"demo/p{n + 1:03d}-{i}.svg"
            with open(os.path.join(media_folder(), filename), "w", encoding="utf-8") as fh:
                fh.write(_svg(title, hex_color, n + i))
            images.append(filename)
        skus = []
        for ci, (color_name, _) in enumerate(colors):
            for size in SIZES if sized else [None]:
                attributes = {"color": color_name}
                code = f"DEMO-{n + 1:03d}-{ci}"
                if size:
                    attributes["size"] = size
                    code += f"-{size}"
                skus.append(
                    {
                        "code": code,
                        "price": base_price + (1000 if size == "XL" else 0),
                        "attributes": attributes,
                        "weight_grams": rng.randint(100, 1500),
                        # A few sold-out variants, so the shop shows them disabled.
                        "stock": 0 if rng.random() < 0.12 else rng.randint(3, 80),
                    }
                )
        catalog.create_product(
            title=title,
            slug=f"demo-{n + 1:03d}",
            description=f"{title}. Demo product generated for the sample shop.",
            category=slug,
            options=["color", "size"] if sized else ["color"],
            featured=n % 7 == 0,
            images=images,
            skus=skus,
            source="demo",
        )
        if slug == "shoes-bags":
            bags.append(f"demo-{n + 1:03d}")
    with unit_of_work() as session:
        remote = ShippingTemplate(**shipping_templates.check_template(REMOTE_TEMPLATE))
        session.add(remote)
        session.flush()
        session.execute(
            update(Product).where(Product.slug.in_(bags)).values(shipping_template_id=remote.id)
        )
    return count
