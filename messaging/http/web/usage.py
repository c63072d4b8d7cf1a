"""The usage page: messages, segments and cost by day, gateway and country, its .xlsx, and the
price table the estimates come from.

Rules (the domain's are in ``messaging.sms.usage`` and ``messaging.sms.prices``):
- Anyone logged in reads the report and downloads it; an admin edits the price
  table (one row per line: ``KE 0.0080 USD``); a refused table changes nothing.
- The range defaults to the last 30 UTC days; a bad date is flashed and the
  default shown.
"""

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from messaging.errors import DomainError
from messaging.http.downloads import xlsx_download
from messaging.http.web import REFUSED, bp, commit_or_flash, flash_refusal, require_role
from messaging.http.web.forms import EmptyForm
from messaging.lib import clock
from messaging.sms import prices
from messaging.sms.usage import parse_range, usage, write_usage


def _range():
    today = clock.now().date()
    try:
        return parse_range(request.args.get("from"), request.args.get("to"), today)
    except DomainError as refusal:
        flash_refusal(refusal)
        return parse_range(None, None, today)


@bp.route("/usage")
@login_required
def usage_page():
    start, end = _range()
    project_id = current_user.project_id
    return render_template(
        "usage/index.html",
        report=usage(project_id, start, end),
        price_text=prices.price_lines(project_id),
        price_rows=prices.prices_json(project_id),
        csrf_form=EmptyForm(),
    )


@bp.route("/usage.xlsx")
@login_required
def usage_export():
    start, end = _range()
    report = usage(current_user.project_id, start, end)
    return xlsx_download(lambda out: write_usage(report, out), "usage")


@bp.route("/usage/prices", methods=["POST"])
@require_role("admin")
def usage_prices():
    """Replace the price table from the page's lines; a bad line changes nothing."""
    project_id = current_user.project_id
    saved = commit_or_flash(
        lambda: prices.set_price_table(project_id, prices.parse_price_lines(request.form.get("prices", "")))
    )
    if saved is not REFUSED:
        flash("Price table saved.", "success")
    return redirect(url_for("web.usage_page"))
