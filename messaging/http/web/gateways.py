"""The gateway page: the project's gateways, adding and changing them, test sends, recent errors."""

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from messaging.errors import NotFound
from messaging.gateways import recent_errors, testing
from messaging.gateways.registry import KINDS, provider
from messaging.gateways.serialize import gateway_json, kind_json, test_send_json
from messaging.gateways.settings import (
    GatewayInput,
    delete_gateway,
    gateway_config,
    gateways_of,
    get_gateway,
    save_gateway,
)
from messaging.http.lookup import get_or_404
from messaging.http.web import REFUSED, bp, commit_or_flash, require_role
from messaging.http.web.forms import EmptyForm
from messaging.models import Message


def _lines(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").replace(",", "\n").splitlines() if part.strip()]


def _form_input(form, default: bool | None) -> GatewayInput | None:
    """The posted gateway; None (flashed) when its rates are not numbers."""
    kind = form.get("kind", "")
    try:
        mps = int(form.get("mps") or 10)
        project_mps = int(form["project_mps"]) if (form.get("project_mps") or "").strip() else None
    except ValueError:
        flash("Messages per second must be whole numbers.", "error")
        return None
    values = {}
    if kind in KINDS:
        for field in provider(kind).fields:
            # Each kind's inputs are named "<kind>.<field>"; a plain "<field>" is taken too.
            raw = form.get(f"{kind}.{field.name}", form.get(field.name))
            if raw is not None:
                values[field.name] = raw
    return GatewayInput(
        kind=kind,
        name=form.get("name"),
        is_default=True if form.get("is_default") else default,
        prefixes=_lines(form.get("prefixes")) if "prefixes" in form else None,
        from_numbers=_lines(form.get("from_numbers")),
        mps=mps,
        project_mps=project_mps,
        values=values,
        allowed_ips=_lines(form.get("allowed_ips")) if "allowed_ips" in form else None,
    )


@bp.route("/settings/gateway", methods=["GET", "POST"])
@login_required
def gateway_settings():
    """The page; a POST changes the default gateway (or the one named by ``gateway_id``)."""
    project_id = current_user.project_id
    if request.method == "POST":
        if not current_user.can("admin"):
            abort(403)
        given = _form_input(request.form, default=None)
        gateway_id = request.form.get("gateway_id", type=int)
        if (
            given is not None
            and commit_or_flash(lambda: save_gateway(project_id, given, gateway_id)) is not REFUSED
        ):
            flash("Gateway saved.", "success")
        return redirect(url_for("web.gateway_settings"))
    saved = gateways_of(project_id) or [gateway_config(project_id)]
    gateways = [
        {
            **gateway_json(cfg, current_user.can("admin")),
            "label": provider(cfg.kind).label,
            "errors": recent_errors.recent(project_id, cfg.id),
        }
        for cfg in saved
    ]
    test = _test_status(request.args.get("test", type=int))
    return render_template(
        "settings/gateway.html",
        gateways=gateways,
        gateway=gateways[0],
        kinds=[kind_json(kind) for kind in KINDS],
        test=test,
        form=EmptyForm(),
    )


@bp.route("/settings/gateways/add", methods=["POST"])
@require_role("admin")
def gateway_add():
    given = _form_input(request.form, default=False)
    if given is not None:
        saved = commit_or_flash(lambda: save_gateway(current_user.project_id, given, add=True))
        if saved is not REFUSED:
            flash(f"Gateway {saved.name!r} added.", "success")
    return redirect(url_for("web.gateway_settings"))


def _own_gateway(gateway_id: int):
    """The project's gateway, else 404 (another project's id changes nothing)."""
    try:
        return get_gateway(current_user.project_id, gateway_id)
    except NotFound:
        abort(404)


@bp.route("/settings/gateways/<int:gateway_id>/delete", methods=["POST"])
@require_role("admin")
def gateway_delete(gateway_id: int):
    _own_gateway(gateway_id)
    if commit_or_flash(lambda: delete_gateway(current_user.project_id, gateway_id)) is not REFUSED:
        flash("Gateway removed.", "success")
    return redirect(url_for("web.gateway_settings"))


@bp.route("/settings/gateways/<int:gateway_id>/test", methods=["POST"])
@require_role("admin")
def gateway_test(gateway_id: int):
    """Queue one test message through this gateway; the page then follows its status."""
    _own_gateway(gateway_id)
    message_id = commit_or_flash(
        lambda: testing.send_test(
            current_user.project_id,
            gateway_id,
            request.form.get("phone", ""),
            request.form.get("text"),
            current_user.id,
        )
    )
    if message_id is REFUSED:
        return redirect(url_for("web.gateway_settings"))
    return redirect(url_for("web.gateway_settings", test=message_id) + f"#gateway-{gateway_id}")


def _test_status(message_id: int | None) -> dict | None:
    if message_id is None:
        return None
    message = get_or_404(Message, message_id)
    if message.gateway_id is None:
        abort(404)
    _own_gateway(message.gateway_id)
    return {**test_send_json(message), "url": url_for("web.gateway_test_status", message_id=message.id)}


@bp.route("/settings/gateways/tests/<int:message_id>.json")
@login_required
def gateway_test_status(message_id: int):
    """A test message's status, for the page to follow without a reload."""
    return jsonify(_test_status(message_id))
