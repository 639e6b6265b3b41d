"""``flask koudai sync``, ``drift`` and ``dead-letters``: the sync engine by hand.

``sync`` runs a channel's jobs now, in this process (whatever ``KOUDAI_JOBS`` says), with a
progress bar; ``--full`` also reads everything the channel shows and repairs the drift.
``drift`` reads what each channel publishes and prints it against what its rule says, one
line per SKU that differs; it exits with code 1 when anything drifted, so a cron job or a
monitor can alert on it.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from koudai_flask.cli_support import fail, one_line_errors
from koudai_flask.connectors.base import (
    EVENTS,
    FETCH_ORDERS,
    FETCH_SHIPMENTS,
    FETCH_STOCK,
    PUSH_STOCK,
    connector_class,
)
from koudai_flask.services.channels import ChannelInfo


def _channels(name: str | None) -> list[ChannelInfo]:
    from koudai_flask.services import channels

    linked = [c for c in channels.all_channels(with_connector=True) if c.active]
    if name is None:
        return linked
    chosen = [c for c in linked if c.name == name]
    if not chosen:
        known = ", ".join(c.name for c in linked) or "none"
        fail(f"no linked channel named {name!r} (linked channels: {known})")
    return chosen


def _steps(channel: ChannelInfo, full: bool) -> list[str]:
    cls = connector_class(channel.kind)
    caps = cls.capabilities if cls is not None else frozenset()
    steps = []
    if EVENTS in caps:
        steps.append("poll_messages")
    if FETCH_ORDERS in caps:
        steps.append("import_orders")
    if FETCH_SHIPMENTS in caps:
        steps.append("pull_shipments")  # before counts, as the periodic tick does
    if FETCH_STOCK in caps and PUSH_STOCK not in caps:
        steps.append("pull_stock")
    if PUSH_STOCK in caps:
        steps.append("reconcile" if full and FETCH_STOCK in caps else "push_stock")
    return steps


def register(koudai_cli: AppGroup) -> None:
    @koudai_cli.command("sync")
    @click.option("--channel", "name", help="Only this channel (default: every linked one).")
    @click.option("--full", is_flag=True, help="Also read everything and repair the drift.")
    @one_line_errors
    def sync(name: str | None, full: bool) -> None:
        """Run the channels' sync jobs now: messages, orders, stock, shipments."""
        from koudai_flask.jobs.sync import run_channel_job
        from koudai_flask.services import channels

        chosen = _channels(name)
        work = [(c, step) for c in chosen for step in _steps(c, full)]
        with click.progressbar(
            work, label="syncing", item_show_func=lambda w: f"{w[0].name} {w[1]}" if w else ""
        ) as bar:
            for channel, step in bar:
                run_channel_job(channel.id, step, [])
        failed = 0
        for channel in chosen:
            state = channels.info(channel.id)
            if state.status == "ok":
                click.echo(f"{state.name}: ok")
            else:
                failed += 1
                click.echo(f"{state.name}: {state.status}: {state.last_error}")
        if failed:
            sys.exit(2)

    @koudai_cli.command("drift")
    @click.option("--channel", "name", help="Only this channel (default: every linked one).")
    @one_line_errors
    def drift(name: str | None) -> None:
        """Print each channel's published quantity against the expected one; exit 1 on drift."""
        from koudai_flask.jobs.sync import build_connector
        from koudai_flask.services import stock_sync

        total = 0
        for channel in _channels(name):
            cls = connector_class(channel.kind)
            if cls is None or not {FETCH_STOCK, PUSH_STOCK} <= cls.capabilities:
                continue  # only channels we publish to and can read back
            connector = build_connector(channel)
            assert connector is not None
            try:
                published = list(connector.fetch_stock(None))
            finally:
                connector.close()
            rows = stock_sync.compare(channel.name, published, record=True, repair=False)
            drifted = [row for row in rows if row.drifted]
            total += len(drifted)
            click.echo(f"{channel.name}: {len(rows)} listing(s), {len(drifted)} drifted")
            for row in drifted:
                shown = "-" if row.published is None else str(row.published)
                click.echo(f"  {row.sku_code}: published {shown}, expected {row.expected}")
        click.echo(f"drift: {total}")
        if total:
            sys.exit(1)

    @koudai_cli.command("dead-letters")
    @click.option("--channel", "name", help="Only this channel.")
    @click.option("--requeue", "requeue_id", type=int, help="Run this dead letter again.")
    @click.option("--discard", "discard_id", type=int, help="Drop this dead letter.")
    @one_line_errors
    def dead_letters(name: str | None, requeue_id: int | None, discard_id: int | None) -> None:
        """List the channel jobs that gave up, or requeue / discard one."""
        from koudai_flask.jobs.sync import requeue
        from koudai_flask.services import channel_admin, sync_log

        if requeue_id is not None and discard_id is not None:
            fail("give --requeue or --discard, not both")
        letter_id = requeue_id if requeue_id is not None else discard_id
        if letter_id is not None and name is not None:
            owner = channel_admin.letter_channel(letter_id)
            if owner is not None and owner != name:
                fail(f"dead letter {letter_id} belongs to channel {owner}, not {name}")
        if requeue_id is not None:
            requeue(requeue_id, by="cli")
            click.echo(f"requeued dead letter {requeue_id}")
            return
        if discard_id is not None:
            sync_log.discard(discard_id, by="cli")
            click.echo(f"discarded dead letter {discard_id}")
            return
        letters = sync_log.dead_letters(name)
        for letter in letters:
            click.echo(
                f"{letter.id}\t{letter.channel}\t{letter.job}{letter.arguments}\t"
                f"{letter.attempts} attempt(s)\t{letter.message}"
            )
        click.echo(f"{len(letters)} dead letter(s)")
