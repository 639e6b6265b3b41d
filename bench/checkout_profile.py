"""The checkout benchmark's statement count: one thread's ``orders.place`` calls with
SQLAlchemy listeners counting the statements, transactions and pool checkouts of each."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event

from koudai_flask.services import orders

PROFILE_WARMUP = 20  # orders placed before the profile starts counting

_TABLE = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b.*?\b(koudai_\w+)", re.S | re.I)


@dataclass
class Profile:
    orders: int = 0
    seconds: float = 0.0
    execute_seconds: float = 0.0
    in_transaction: int = 0
    after_commit: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    autocommit: int = 0  # statements sent in the driver's autocommit: each its own transaction
    pre_ping: bool = False
    kinds: Counter[str] = field(default_factory=Counter)


def profile_place(app: Flask, engine: Engine, codes: list[str], count: int) -> Profile:
    """Place ``count`` orders on one thread with SQLAlchemy listeners counting everything."""
    profile = Profile(pre_ping=bool(getattr(engine.pool, "_pre_ping", False)))
    phase = {"committed": False, "started": 0.0}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        phase["started"] = time.perf_counter()
        if getattr(conn.connection.dbapi_connection, "autocommit", False):
            profile.autocommit += 1
        if phase["committed"]:
            profile.after_commit += 1
        else:
            profile.in_transaction += 1
        match = _TABLE.match(statement)
        kind = f"{match.group(1).split()[0].upper()} {match.group(2)}" if match else statement[:40]
        profile.kinds[("after commit: " if phase["committed"] else "") + kind] += 1

    def after(*args: Any) -> None:
        profile.execute_seconds += time.perf_counter() - phase["started"]

    def on_commit(conn: Any) -> None:
        profile.commits += 1
        phase["committed"] = True

    def on_rollback(conn: Any) -> None:
        profile.rollbacks += 1

    def on_checkout(*args: Any) -> None:
        profile.checkouts += 1

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", before),
        (engine, "after_cursor_execute", after),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine.pool, "checkout", on_checkout),
    ]
    with app.app_context():
        for i in range(PROFILE_WARMUP):  # warm the statement caches outside the count
            orders.place(channel="web", lines=[{"sku": codes[i % len(codes)], "quantity": 1}])
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        try:
            began = time.perf_counter()
            for i in range(count):
                phase["committed"] = False
                orders.place(channel="web", lines=[{"sku": codes[i % len(codes)], "quantity": 1}])
                profile.orders += 1
            profile.seconds = time.perf_counter() - began
        finally:
            for target, name, fn in listeners:
                event.remove(target, name, fn)
    return profile


def print_profile(profile: Profile) -> None:
    n = profile.orders
    total = profile.in_transaction + profile.after_commit
    ms = profile.seconds / n * 1000
    db_ms = profile.execute_seconds / n * 1000
    print(f"profile of orders.place, 1 thread, {n} orders:")
    print(
        f"  statements per order: {total / n:.1f} ({profile.in_transaction / n:.1f} in the "
        f"order's transaction, {profile.after_commit / n:.1f} after its commit: inline outbox "
        "dispatch)"
    )
    print(
        f"  transactions per order: commits {profile.commits / n:.1f}, rollbacks "
        f"{profile.rollbacks / n:.1f} (SQLAlchemy's; a rollback with nothing open sends "
        f"nothing), statements in autocommit {profile.autocommit / n:.1f} (each a "
        f"transaction of its own, without BEGIN and COMMIT); pool checkouts "
        f"{profile.checkouts / n:.1f} "
        + ("(each one a pre-ping round trip)" if profile.pre_ping else "(pre-ping off)")
    )
    print(
        f"  time per order: {ms:.2f} ms, of which {db_ms:.2f} ms waiting in cursor.execute "
        f"({db_ms / ms:.0%}); the rest is Python, pings, BEGIN/COMMIT"
    )
    print(
        "  (the counting listeners send place's statements through Connection.execute instead "
        "of the driver's cursor, services/direct.py: this time is that slower path's)"
    )
    print("  statements by kind, per order:")
    for kind, count in sorted(profile.kinds.items(), key=lambda kv: kv[0].startswith("after")):
        print(f"    {count / n:4.1f}  {kind}")
