"""Channel endpoints: the sales channels and the state of their sync."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from koudai_flask.blueprints.api.access import principal, requires
from koudai_flask.schemas.api_channels import ChannelList, ChannelOut
from koudai_flask.services import platform_reads


def register(bp: Blueprint) -> None:
    @bp.route("/channels", methods=["GET"])
    @requires("channels.view")
    @bp.response(200, ChannelList)
    def channels_list() -> Any:
        """Linked channels with their sync status (never their settings)."""
        return {"items": platform_reads.channels(principal())}

    @bp.route("/channels/<name>", methods=["GET"])
    @requires("channels.view")
    @bp.response(200, ChannelOut)
    def channel_read(name: str) -> Any:
        """One channel's sync status."""
        return platform_reads.channel(principal(), name)
