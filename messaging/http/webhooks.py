"""Gateway webhooks: Twilio's ``POST /twilio/status`` and ``POST /twilio/inbound``, and every
gateway's ``/gateways/<kind>/<gateway_id>/inbound`` and ``/status`` (``messaging.gateways.receiving``
has their rules: a signature or the gateway's secret in the URL, else 403 and nothing changes).

Rules:
- Every request is checked with ``X-Twilio-Signature`` against the auth token
  of the project whose gateway it concerns (403 otherwise, and nothing
  changes). The check uses ``PUBLIC_BASE_URL`` when set (behind a proxy Twilio
  signs the public URL), else the URL of the request, and the whole form as sent.
- Nothing reaches the database before the request is plausible: the input
  guard (``messaging.http.input_guard``) has already refused a NUL or a broken
  character with 400; a request without a signature, or whose ``AccountSid``
  is not ``AC`` and 32 hexadecimal digits (the form a gateway's Account SID
  is saved in), is a 403 without a query.
- The signature can only be checked with the stored auth token, so the look-up
  of the gateways by a well-formed ``AccountSid`` is the one query made before
  it; everything else (the message, the status, the case) comes after.
"""

import logging
import re

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from messaging.db.tenancy import project_scope
from messaging.extensions import csrf, db
from messaging.gateways import receiving
from messaging.gateways.base import StatusReport, WebhookRequest
from messaging.gateways.twilio import OPT_OUT_CODE
from messaging.models import GatewayConfig
from messaging.sms import crypto
from messaging.sms.status import handle_status_callback

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")
csrf.exempt(bp)
gateways_bp = Blueprint("gateway_webhooks", __name__, url_prefix="/gateways")
csrf.exempt(gateways_bp)


def public_request_url() -> str:
    """The URL Twilio called, as it signed it."""
    base = current_app.config.get("PUBLIC_BASE_URL") or ""
    if base:
        query = request.query_string.decode()
        return base.rstrip("/") + request.path + (f"?{query}" if query else "")
    return request.url


def validate_twilio_request(auth_token: str) -> bool:
    """True when this request carries a valid ``X-Twilio-Signature`` for ``auth_token``."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    return RequestValidator(auth_token).validate(public_request_url(), request.form, signature)


# How an Account SID looks (``messaging.gateways.settings`` saves only this form).
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")


def plausible_request(account_sid: str) -> bool:
    """True when the request is signed and names a well-formed Account SID (checked without a query)."""
    return bool(request.headers.get("X-Twilio-Signature")) and ACCOUNT_SID.fullmatch(account_sid) is not None


def candidate_gateways(account_sid: str) -> list:
    """The gateways whose token may have signed this request: none, and no query, unless it is plausible."""
    return gateways_for_account(account_sid) if plausible_request(account_sid) else []


def gateways_for_account(account_sid: str) -> list:
    """The Twilio gateways (any project) using this Account SID, as rows of the columns checked here."""
    # Core on the session's connection: rows of these columns are all a webhook reads,
    # and this runs on every webhook request. Any project's gateway may match.
    gateways = GatewayConfig.__table__
    return list(
        db.session.connection().execute(
            select(
                gateways.c.id,
                gateways.c.project_id,
                gateways.c.from_numbers,
                gateways.c.messaging_service_sid,
                gateways.c.auth_token_encrypted,
                gateways.c.allowed_ips,
            )
            .where(gateways.c.account_sid == account_sid, gateways.c.kind == "twilio")
            .order_by(gateways.c.id)
        )
    )


def _signed_by_one_of(candidates: list):
    """The first of ``candidates`` whose auth token signed this request, or None."""
    for cfg in candidates:
        if cfg.allowed_ips and not receiving.address_allowed(request.remote_addr or "", cfg.allowed_ips):
            continue
        token = crypto.decrypt(cfg.auth_token_encrypted) if cfg.auth_token_encrypted else None
        if token and validate_twilio_request(token):
            return cfg
    return None


@bp.route("/status", methods=["POST"])
def status():
    """A delivery report: statuses only move forward; unknown sids are logged and ignored."""
    account_sid = request.form.get("AccountSid", "")
    candidates = candidate_gateways(account_sid)
    cfg = _signed_by_one_of(candidates)
    if cfg is None:
        log.warning("status callback refused: bad signature account_sid=%r", account_sid[:40])
        abort(403)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    status_value = request.form.get("MessageStatus") or request.form.get("SmsStatus") or ""
    error_code = request.form.get("ErrorCode") or None
    if not sid or not status_value:
        return "", 204
    report = StatusReport(sid, status_value, error_code, opted_out=error_code == str(OPT_OUT_CODE))
    # Several gateways (of several projects) may share one Twilio account: the message says whose.
    gateways = [cfg] + [other for other in candidates if other.id != cfg.id]
    outcome = "unknown_sid"
    for gateway in gateways:
        with project_scope(gateway.project_id):
            outcome = handle_status_callback(gateway.project_id, report, False, gateway.id)
        if outcome != "unknown_sid":
            break
    if outcome == "unknown_sid":  # kept for each: the send job that records the sid applies it
        for gateway in gateways:
            with project_scope(gateway.project_id):
                handle_status_callback(gateway.project_id, report, True, gateway.id)
    db.session.commit()
    return "", 204


def inbound_gateway(account_sid: str, to_number: str):
    """The Twilio gateway (any project) that owns ``to_number`` and whose token signed this request.

    Several projects may share an Account SID: the one with ``To`` among its
    numbers is tried first; a project sending through a Messaging Service
    without listed numbers is tried next.
    """
    candidates = candidate_gateways(account_sid)
    owners = [c for c in candidates if to_number in (c.from_numbers or [])]
    services = [c for c in candidates if c not in owners and c.messaging_service_sid and not c.from_numbers]
    return _signed_by_one_of(owners + services)


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@bp.route("/inbound", methods=["POST"])
def inbound():
    """An incoming SMS: stored once per MessageSid, handled in a job; answers empty TwiML at once."""
    from messaging.inbound.receive import receive_inbound

    account_sid = request.form.get("AccountSid", "")
    to_number = request.form.get("To", "")
    cfg = inbound_gateway(account_sid, to_number)
    if cfg is None:
        log.warning(
            "inbound refused: bad signature or unknown number account_sid=%r to=%r",
            account_sid[:40],
            to_number[:40],
        )
        abort(403)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    from_number = request.form.get("From", "")
    if not sid or not from_number:
        log.warning("inbound without MessageSid or From project_id=%s", cfg.project_id)
        return Response(EMPTY_TWIML, status=200, mimetype="text/xml")
    with project_scope(cfg.project_id):
        receive_inbound(cfg.project_id, from_number, to_number, request.form.get("Body", ""), sid)
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def webhook_request() -> WebhookRequest:
    """This request as plain data for a gateway module."""
    return WebhookRequest(
        method=request.method,
        url=public_request_url(),
        headers={name.lower(): value for name, value in request.headers.items()},
        args=request.args.to_dict(),
        form=request.form.to_dict(),
        body=request.get_data(cache=True),
        remote_addr=request.remote_addr or "",
    )


def _gateway_for(kind: str, gateway_id: int):
    data = webhook_request()
    try:
        cfg, gateway = receiving.authenticated_gateway(kind, gateway_id, data)
    except receiving.Refused as exc:
        log.warning("gateway webhook refused kind=%s: %s", kind[:20], exc)
        abort(403)
    return cfg, gateway, data


@gateways_bp.route("/<kind>/<int:gateway_id>/inbound", methods=["GET", "POST"])
def gateway_inbound(kind: str, gateway_id: int):
    """A provider's incoming SMS: stored once per provider message id, handled in a job."""
    cfg, gateway, data = _gateway_for(kind, gateway_id)
    receiving.take_inbound(cfg, gateway, data)
    body, mimetype = gateway.inbound_answer
    return Response(body, status=200, mimetype=mimetype)


@gateways_bp.route("/<kind>/<int:gateway_id>/status", methods=["GET", "POST"])
def gateway_status(kind: str, gateway_id: int):
    """A provider's delivery report: statuses only move forward; unknown ids are kept an hour."""
    cfg, gateway, data = _gateway_for(kind, gateway_id)
    receiving.take_status(cfg, gateway, data)
    db.session.commit()
    return Response("", status=200, mimetype="text/plain")
