"""The marketing migration (0006) builds exactly the marketing models' tables, and undoes them.

It is judged on its own (upgrade to 0006, not head), so later revisions cannot hide a
difference or stop it from being checked.
"""

from __future__ import annotations

from sqlalchemy import inspect

from koudai_flask.models import metadata
from koudai_flask.schema import create_all
from tests.test_migrations import describe_schema, empty_database, engines, invoke

__all__ = ["empty_database", "engines"]  # fixtures, shared with test_migrations

MARKETING_TABLES = {
    "koudai_coupon",
    "koudai_coupon_batch",
    "koudai_coupon_customer_use",
    "koudai_coupon_redemption",
    "koudai_promotion",
    "koudai_limited_price",
    "koudai_order_discount",
}


def test_0006_builds_the_marketing_tables_of_the_models(make_app, empty_database, engines):
    assert set(metadata.tables) >= MARKETING_TABLES
    migrated_url, reference_url = empty_database(), empty_database()
    app = make_app(migrated_url)
    result = invoke(app, "koudai", "db", "upgrade", "0006")
    assert (result.exit_code, result.stderr) == (0, "")
    create_all(engines(reference_url))
    migrated, reference = engines(migrated_url), engines(reference_url)
    assert describe_schema(migrated, MARKETING_TABLES) == describe_schema(
        reference, MARKETING_TABLES
    )

    result = invoke(app, "koudai", "db", "downgrade", "0005")
    assert (result.exit_code, result.stderr) == (0, "")
    migrated.dispose()
    assert not MARKETING_TABLES & set(inspect(migrated).get_table_names())
