"""CommCare HQ's own URLs, so tools written for CommCare work unchanged: ``/a/<slug>/``.

Rules (../shared/COMMCARE.md; the domain's are in ``messaging.commcare``):
- **Auth.** ``Authorization: ApiKey <user>:<key>`` (the scheme in any case:
  commcare-export sends ``apikey``), where ``<key>`` is one of the project's API
  tokens and ``<user>`` its owner's e-mail; or HTTP Basic with a web user's e-mail
  and password (the receiver also takes a mobile worker's username, plain or as
  ``<username>@<slug>.commcarehq.org``, and password). Wrong passwords count
  toward the login limits. A 401 carries ``WWW-Authenticate: Basic`` and says to use
  an API key (``--auth-mode apikey``): HTTP Digest would need an MD5 of every
  password stored, which we do not keep.
- **Tenancy.** The slug must be the authenticated project's: any other slug, known
  or not, is a 404 with an empty body, never its data.
- Reads need a viewer; the receiver a manager (or a mobile worker).
- **Errors** are CommCare's: ``{"error": "..."}`` with 400, 401, 403 or 404 (a
  detail that does not exist is an empty 404); the receiver answers OpenRosa XML.
- ``/api/v0.4/`` and ``/api/v0.5/`` answer the same; the trailing slash is optional.
"""

from __future__ import annotations

import base64
import binascii
import logging
from xml.sax.saxutils import escape

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy import select

from messaging.accounts import login_limits, logins
from messaging.accounts.passwords import password_matches
from messaging.commcare import bulk_upload, listing
from messaging.commcare.receiver import MAX_BYTES, receive_xform
from messaging.db import tenancy
from messaging.errors import DomainError, Invalid
from messaging.extensions import csrf, db
from messaging.models import ApiToken, Import, MobileWorker, Project, WebUser, hash_token

log = logging.getLogger(__name__)

bp = Blueprint("commcare", __name__, url_prefix="/a/<slug>")
csrf.exempt(bp)

VERSIONS = ("v0.4", "v0.5")
RESOURCES = (*listing.RESOURCES, *listing.EMPTY_RESOURCES)
OPENROSA = "http://openrosa.org/http/response"
REALM = "CommCare API (use an API key: --auth-mode apikey)"


class Refused(Exception):
    """An answer decided before the view: its status and JSON error (None: an empty body)."""

    def __init__(self, status: int, message: str | None):
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(Refused)
def _refused(exc: Refused):
    db.session.rollback()
    if exc.message is None:
        return Response(status=exc.status)
    response = jsonify({"error": exc.message})
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return response


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    db.session.rollback()
    response = jsonify({"error": exc.message})
    response.status_code = 429 if isinstance(exc, login_limits.TooManyWrongPasswords) else 400
    if isinstance(exc, login_limits.TooManyWrongPasswords):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _project(slug: str) -> Project | None:
    return db.session.execute(
        select(Project).where(Project.slug == slug).execution_options(all_projects=True)
    ).scalar_one_or_none()


def _api_key(credentials: str) -> WebUser:
    user, _, key = credentials.strip().rpartition(":")
    token = db.session.execute(
        select(ApiToken)
        .where(ApiToken.token_hash == hash_token(key.strip()))
        .execution_options(all_projects=True)
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        raise Refused(401, "This API key is not valid or has been revoked.")
    if user.strip().lower() != token.user.email.lower():
        raise Refused(401, "This API key belongs to another user.")
    return token.user


def _basic(credentials: str, project: Project | None, workers: bool) -> WebUser | MobileWorker:
    try:
        username, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "The Basic credentials are not readable.") from None
    address = request.remote_addr
    login_limits.check(username.lower(), address)
    user = logins.authenticate(username, password)
    if user is not None:
        return user
    if workers and project is not None:
        suffix = f"@{project.slug}.commcarehq.org"
        name = username.removesuffix(suffix)
        worker = db.session.execute(
            select(MobileWorker)
            .where(MobileWorker.project_id == project.id, MobileWorker.username == name)
            .execution_options(all_projects=True)
        ).scalar_one_or_none()
        if worker is not None and worker.is_active and password_matches(worker.password_hash, password):
            return worker
    login_limits.record_failure(username.lower(), address)
    raise Refused(401, "Wrong user name or password.")


def authenticate(slug: str, *, workers: bool = False, role: str = "viewer"):
    """The caller (a web user, or for the receiver a mobile worker), scoped to its project."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    project = _project(slug)
    if scheme.lower() == "apikey":
        caller = _api_key(credentials)
    elif scheme.lower() == "basic":
        caller = _basic(credentials, project, workers)
    else:
        raise Refused(
            401, "Send 'Authorization: ApiKey <email>:<api key>' (commcare-export: --auth-mode apikey)."
        )
    if project is None or project.id != caller.project_id:
        raise Refused(404, None)
    if isinstance(caller, WebUser) and not caller.can(role):
        raise Refused(403, f"Your role ({caller.role}) cannot do this; it needs {role}.")
    tenancy.set_current_project(project.id)
    g.commcare_caller = caller
    return caller


def _resource(resource: str) -> str:
    if resource not in RESOURCES:
        raise Refused(404, None)
    return resource


@bp.get("/api/<version>/<resource>/", strict_slashes=False)
def list_objects(slug: str, version: str, resource: str):
    if version not in VERSIONS:
        raise Refused(404, None)
    authenticate(slug)
    page = listing.list_page(_resource(resource), slug, request.args, request.path)
    return jsonify(page)


@bp.get("/api/<version>/<resource>/<object_id>/", strict_slashes=False)
def show_object(slug: str, version: str, resource: str, object_id: str):
    if version not in VERSIONS:
        raise Refused(404, None)
    authenticate(slug)
    found = listing.detail(_resource(resource), slug, object_id)
    if found is None:
        raise Refused(404, None)
    return jsonify(found)


# --- the bulk case upload ------------------------------------------------------------------


def _hq_answer(code: int, message: str, **extra) -> Response:
    response = jsonify({"code": code, "message": message, **extra})
    response.status_code = code
    return response


@bp.post("/importer/excel/bulk_upload_api/", strict_slashes=False)
def bulk_upload_api(slug: str):
    """CommCare's Bulk Case Upload API: 200 ``{code, message: "success", status_url}``; a refused
    request is HQ's 500 ``{code: 500, message}``, nothing kept."""
    caller = authenticate(slug, role="manager")
    try:
        imp = bulk_upload.start_upload(request.form, request.files, caller.id)
    except DomainError as exc:
        return _hq_answer(500, exc.message)
    status_url = url_for("commcare.bulk_upload_status", slug=slug, import_id=imp.id, _external=True)
    return _hq_answer(200, "success", status_url=status_url)


@bp.get("/importer/excel/bulk_upload_api/status/<import_id>/", strict_slashes=False)
def bulk_upload_status(slug: str, import_id: str):
    authenticate(slug)
    imp = db.session.execute(
        select(Import).where(Import.id == import_id, Import.kind == bulk_upload.KIND)
    ).scalar_one_or_none()
    if imp is None:
        raise Refused(404, None)
    return jsonify(bulk_upload.status_json(imp))


# --- the receiver -------------------------------------------------------------------------


def openrosa(nature: str, message: str, status: int) -> Response:
    body = (
        f'<OpenRosaResponse xmlns="{OPENROSA}"><message nature="{nature}">{escape(message)}</message>'
        "</OpenRosaResponse>"
    )
    return Response(body, status=status, mimetype="text/xml")


def _xml_body() -> bytes:
    if request.content_length is not None and request.content_length > MAX_BYTES * 2:
        raise Invalid("too_large", "The submission is too large.")
    if request.mimetype == "multipart/form-data":
        part = request.files.get("xml_submission_file")
        if part is None:
            raise Invalid("unreadable", "The multipart submission has no 'xml_submission_file' part.")
        return part.read(MAX_BYTES + 1)
    return request.get_data(cache=False)


@bp.post("/receiver/", strict_slashes=False)
@bp.post("/receiver/<app_id>/", strict_slashes=False)
@bp.post("/receiver/secure/", strict_slashes=False)
@bp.post("/receiver/secure/<app_id>/", strict_slashes=False)
def receiver(slug: str, app_id: str | None = None):
    """An XForm submission: 201 ``submit_success``; a refusal by a case rule is 201
    ``submit_error`` (OpenRosa 2) or 422 ``processing_failure`` (``X-OpenRosa-Version: 3``);
    unreadable XML is 500 ``submit_error``, as HQ answers."""
    caller = authenticate(slug, workers=True, role="manager")
    if app_id in ("api", "submission"):
        app_id = None
    worker_id = caller.id if isinstance(caller, MobileWorker) else None
    version3 = request.headers.get("X-OpenRosa-Version", "").startswith("3")
    try:
        result = receive_xform(_xml_body(), app_id, worker_id)
    except DomainError as exc:
        if exc.code in ("unreadable", "too_large"):  # not a form at all: HQ's 500 (413 for the size)
            return openrosa("submit_error", exc.message, 413 if exc.code == "too_large" else 500)
        return openrosa(
            "processing_failure" if version3 else "submit_error", exc.message, 422 if version3 else 201
        )
    log.info("receiver project_slug=%s form_id=%s duplicate=%s", slug, result.form.form_id, result.duplicate)
    return openrosa("submit_success", "   √   ", 201)
