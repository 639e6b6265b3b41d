"""``flask koudai import --channel NAME``: a linked Taobao shop's catalog, imported now.

It runs the import in this process (whatever ``KOUDAI_JOBS`` says) under the channel's sync
lock, with a progress bar, and prints the counts at the end. An unknown channel, a channel
that is not a Taobao shop, or a failure of the shop's API is one line and exit code 2.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

import click
from flask.cli import AppGroup

from koudai_flask.cli_support import fail, one_line_errors
from koudai_flask.errors import NotFound

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


def register(koudai_cli: AppGroup) -> None:
    @koudai_cli.command("import")
    @click.option("--channel", "name", required=True, help="The linked Taobao shop to import.")
    @one_line_errors
    def import_catalog(name: str) -> None:
        """Import a Taobao shop's items on sale as products (again: update, never duplicate)."""
        from koudai_flask.jobs.catalog_import import ImportReport, run_import
        from koudai_flask.services import channels

        try:
            channel = channels.info(name)
        except NotFound:
            shops = [c.name for c in channels.all_channels() if c.kind == "taobao"]
            fail(f"no channel named {name!r} (Taobao channels: {', '.join(shops) or 'none'})")

        with ExitStack() as stack:
            bars: list[ProgressBar[int]] = []

            def show(report: ImportReport) -> None:
                if not bars:
                    bars.append(
                        stack.enter_context(
                            click.progressbar(length=report.total, label=f"importing {name}")
                        )
                    )
                bars[0].update(report.done - bars[0].pos)

            report = run_import(channel.id, on_progress=show)
        click.echo(
            f"{name}: {report.total} item(s): {report.created} created, "
            f"{report.updated} updated, {report.bound} bound, {report.unchanged} unchanged"
        )
