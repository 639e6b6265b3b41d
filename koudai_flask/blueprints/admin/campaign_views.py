"""Campaigns (``marketing.manage``): write one, see how many it reaches, send it, follow it.

Creating keeps a draft; the draft's page shows how many customers its segment holds now;
sending resolves the segment once and hands the batches to the jobs; the page then shows
the recipients per status and the campaign's funnel so far.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from koudai_flask.blueprints.admin.common import actor_id, checked_form, staff_required
from koudai_flask.blueprints.admin.funnel_views import STEP_LABELS, funnel_chart
from koudai_flask.blueprints.admin.message_views import CHANNEL_LABELS
from koudai_flask.blueprints.refusals import refusal_text
from koudai_flask.errors import KoudaiError, NotFound
from koudai_flask.i18n import gettext as _k
from koudai_flask.i18n import lazy_gettext as _l
from koudai_flask.notifications import CHANNELS
from koudai_flask.services import campaigns, funnel_stats, segments

STATUS_LABELS = {"draft": _l("Draft"), "sending": _l("Sending"), "sent": _l("Sent")}
RECIPIENT_LABELS = {
    "pending": _l("Waiting"),
    "sending": _l("Being sent"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "skipped": _l("No address"),
}
FIELDS = ("name", "channel", "segment_id", "subject", "body", "wechat_template_id", "target")


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _campaign_or_404(campaign_id: str) -> Any:
    """The campaign of a URL (the permission is checked before the id is even parsed)."""
    if not campaign_id.isdigit():
        abort(404)
    try:
        return campaigns.get(int(campaign_id))
    except NotFound:
        abort(404)


def _link_base() -> str:
    """Where this back office's shop is, for the links of a campaign sent from here."""
    configured: str | None = current_app.config["KOUDAI_CAMPAIGN_LINK_BASE"]
    return configured or request.host_url.rstrip("/") + current_app.config["KOUDAI_SHOP_URL_PREFIX"]


def register(bp: Blueprint) -> None:
    @bp.get("/campaigns")
    @staff_required("marketing.manage")
    def campaigns_list() -> ResponseReturnValue:
        rows = campaigns.campaigns_list()
        return render_template(
            "koudai/admin/campaigns.html",
            campaigns=rows,
            progress={c.id: campaigns.progress(c.id) for c in rows if c.status != "draft"},
            status_labels=STATUS_LABELS,
            channel_labels=CHANNEL_LABELS,
        )

    @bp.route("/campaigns/new", methods=["GET", "POST"])
    @staff_required("marketing.manage")
    def campaign_new() -> ResponseReturnValue:
        values: dict[str, str] = {name: "" for name in FIELDS}
        values.update(channel="wechat", target="/", rate_per_minute="600")
        error = None
        if request.method == "POST":
            checked_form()
            values = {
                name: request.form.get(name, "").strip() for name in (*FIELDS, "rate_per_minute")
            }
            values["body"] = request.form.get("body", "")
            try:
                campaign = campaigns.create_campaign(
                    name=values["name"],
                    channel=values["channel"],
                    segment_id=_int(values["segment_id"]),
                    subject=values["subject"],
                    body=values["body"],
                    wechat_template_id=values["wechat_template_id"],
                    target=values["target"] or "/",
                    rate_per_minute=_int(values["rate_per_minute"], 0) or 0,
                    actor=actor_id(),
                )
            except KoudaiError as exc:
                error = refusal_text(exc)
            else:
                flash(_k("Campaign saved as a draft."), "success")
                return redirect(url_for(".campaign_detail", campaign_id=campaign.id), 303)
        return render_template(
            "koudai/admin/campaign_form.html",
            values=values,
            segments=segments.all_segments(),
            channels=CHANNELS,
            channel_labels=CHANNEL_LABELS,
            variables=campaigns.VARIABLES,
            error=error,
            form=FlaskForm(),
        ), (422 if error else 200)

    @bp.get("/campaigns/<campaign_id>")
    @staff_required("marketing.manage")
    def campaign_detail(campaign_id: str) -> ResponseReturnValue:
        campaign = _campaign_or_404(campaign_id)
        audience = None
        if campaign.status == "draft" and campaign.segment_id is not None:
            audience = campaigns.audience_size(campaign.segment_id)
        today = funnel_stats.today()
        start = (campaign.started_at or campaign.created_at).astimezone(funnel_stats.zone())
        summary = funnel_stats.funnel(min(start.date(), today), today, campaign_id=campaign.id)
        return render_template(
            "koudai/admin/campaign.html",
            campaign=campaign,
            audience=audience,
            progress=campaigns.progress(campaign.id),
            status_labels=STATUS_LABELS,
            recipient_labels=RECIPIENT_LABELS,
            channel_labels=CHANNEL_LABELS,
            funnel=summary,
            chart=funnel_chart(summary),
            step_labels=STEP_LABELS,
            form=FlaskForm(),
        )

    @bp.post("/campaigns/<campaign_id>/send")
    @staff_required("marketing.manage")
    def campaign_send(campaign_id: str) -> ResponseReturnValue:
        checked_form()
        campaign = _campaign_or_404(campaign_id)
        if campaign.status != "draft":
            flash(_k("This campaign was sent already."), "error")
            return redirect(url_for(".campaign_detail", campaign_id=campaign_id), 303)
        try:
            campaigns.send_campaign(campaign.id, actor=actor_id(), link_base=_link_base())
        except KoudaiError as exc:
            flash(refusal_text(exc), "error")
        else:
            flash(_k("Sending started."), "success")
        return redirect(url_for(".campaign_detail", campaign_id=campaign_id), 303)
