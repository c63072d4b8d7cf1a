"""Forwarding locations: validation, masking of secret headers, create/change/delete, counts.

Rules:
- A location's URL is http:// or https://, names a host, has no spaces or control
  characters and no user name or password (send them in a header instead); at most
  2000 characters. Its kind is ``forms``, ``cases`` or ``events`` (a message event
  webhook) and cannot be changed.
- A webhook (kind ``events``) names the events it receives: a non-empty list of
  ``EVENT_NAMES`` (``message.inbound``, ``message.status``, ``opt_out.changed``,
  ``survey.completed``), each once; other kinds take no events.
- The URL may not point at an internal address: its host may not be, or resolve to, a
  loopback, link-local, private, multicast, unspecified or reserved address unless
  ``OUTBOUND_ALLOW_HOSTS`` allows it (``messaging.lib.outbound``): refused with code
  ``address_not_allowed`` when a location is created or its URL changes. A name that does
  not resolve yet is accepted (nothing internal can be reached through it now); the sender
  checks again before it sends and connects only to the address it checked.
- Headers: at most 20, each a valid header name given once, one line of at most 4000
  characters; the headers the server sets (Host, Content-Length, Content-Type,
  Transfer-Encoding, Connection) cannot be changed.
- Header values whose name looks secret (contains auth, token, key, secret, pass,
  cookie, signature, session or credential) are never shown in full: they show as
  ``****`` followed by their last 4 characters when 16 or longer. A value equal to
  the masked form of the stored one (as GET shows it) keeps the stored value.
- Secrets are tied to their destination: a change of the URL's scheme, host or port
  clears the stored secret header values, unless new values are entered in the same
  change (sending the masked form back is not entering it again); the other headers
  stay. A change of the path or query only keeps them. ``update_location`` returns the
  names of the headers it cleared, for the caller to say so.
- ``notify_emails``: at most 20 valid addresses (a list, or one string split on
  commas, semicolons and spaces), normalised, each once.
- A paused location still captures, but its sender does nothing; resuming sends the
  backlog in order (its sender is enqueued after the commit).
- The project's locations of a kind are looked up once per transaction (capture
  runs on every save); creating or deleting a location empties that cache.
- The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select

from messaging.db.after_commit import after_commit, transaction_cache
from messaging.errors import Invalid
from messaging.extensions import db
from messaging.forwarding.dispatch import dispatch_location
from messaging.lib.outbound import Destination, HostNotFound, OutboundRefused, allow_list, check_url
from messaging.models import ForwardLocation, ForwardRecord
from messaging.models.forwarding import EVENT_NAMES, FORWARD_KINDS, RECORD_STATUSES, ForwardKind

log = logging.getLogger(__name__)

MAX_HEADERS = 20
MAX_EMAILS = 20
MASK = "****"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_RESERVED_HEADERS = {"host", "content-length", "content-type", "transfer-encoding", "connection"}
_SECRET_HINTS = ("auth", "token", "key", "secret", "pass", "cookie", "signature", "session", "credential")
_CACHE = "forwarding_locations"


# --- validation ---------------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> Invalid:
    return Invalid("validation_error", f"{field}: {message}", field=field)


def validate_url(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("url", "is required.")
    url = value.strip()
    if len(url) > 2000:
        raise _invalid("url", "must be at most 2000 characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise _invalid("url", "must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise _invalid("url", "is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("url", "must start with http:// or https://.")
    if not parts.hostname:
        raise _invalid("url", "must name a host, e.g. https://example.org/inbox.")
    if parts.username or parts.password:
        raise _invalid("url", "must not contain a user name or password; send them in a header instead.")
    del port
    refuse_internal_url(url)
    return url


def refuse_internal_url(url: str, field: str = "url") -> None:
    """``Invalid`` (the guard's code) when ``url`` is, or resolves to, an address the operator
    does not allow; a name that does not resolve now passes (the sender checks again)."""
    try:
        checked_destination(url)
    except HostNotFound:
        pass
    except OutboundRefused as refusal:
        raise Invalid(refusal.code, refusal.message, field=field, details=_address(refusal)) from None


def _address(refusal: OutboundRefused) -> dict:
    return {"address": refusal.address} if refusal.address else {}


def checked_destination(url: str) -> Destination:
    """Where a POST to ``url`` may go now (an ``OutboundRefused`` if nowhere), under the
    operator's ``OUTBOUND_ALLOW_HOSTS``."""
    return check_url(url, allow_list(current_app.config.get("OUTBOUND_ALLOW_HOSTS")), field="url")


def validate_kind(value) -> str:
    if value not in FORWARD_KINDS:
        raise _invalid("kind", "must be 'forms', 'cases' or 'events'.")
    return value


def validate_events(kind: str, value) -> list[str] | None:
    """The events a location of ``kind`` receives: a non-empty list of known names for a
    webhook (kind ``events``), nothing for the other kinds."""
    if kind != ForwardKind.EVENTS:
        if value not in (None, []):
            raise _invalid("events", "only a location of kind 'events' receives events.")
        return None
    if not isinstance(value, list) or not value:
        raise _invalid("events", f"must list one or more of {', '.join(EVENT_NAMES)}.")
    unknown = [name for name in value if name not in EVENT_NAMES]
    if unknown:
        raise _invalid("events", f"unknown event {unknown[0]!r}; known: {', '.join(EVENT_NAMES)}.")
    return list(dict.fromkeys(value))


def validate_headers(value, existing: dict | None = None) -> dict:
    """A dict of header name -> string value. A value equal to the masked form of the
    stored one (as GET shows it) keeps the stored value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("headers", "must be an object of header names to string values.")
    if len(value) > MAX_HEADERS:
        raise _invalid("headers", f"must have at most {MAX_HEADERS} headers.")
    old = {k.lower(): (k, v) for k, v in (existing or {}).items()}
    clean: dict = {}
    for name, header_value in value.items():
        _check_header(name, header_value, clean)
        previous = old.get(name.lower())
        if previous is not None and header_value == mask_value(previous[0], previous[1]):
            header_value = previous[1]
        clean[name] = header_value
    return clean


def _check_header(name, value, accepted: dict) -> None:
    """Refuse one header given the ``accepted`` ones before it."""
    if not isinstance(name, str) or not _HEADER_NAME.match(name):
        raise _invalid("headers", f"{name!r} is not a valid header name.")
    if name.lower() in _RESERVED_HEADERS:
        raise _invalid("headers", f"{name} is set by the server and cannot be changed.")
    if name.lower() in {k.lower() for k in accepted}:
        raise _invalid("headers", f"{name} is given twice.")
    if not isinstance(value, str):
        raise _invalid("headers", f"the value of {name} must be a string.")
    if "\r" in value or "\n" in value or len(value) > 4000:
        raise _invalid("headers", f"the value of {name} must be one line of at most 4000 characters.")


def validate_emails(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid("notify_emails", "must be a list of e-mail addresses.")
    if len(value) > MAX_EMAILS:
        raise _invalid("notify_emails", f"must have at most {MAX_EMAILS} addresses.")
    clean = []
    for address in value:
        try:
            normalized = validate_email(address.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            raise _invalid("notify_emails", f"{address!r} is not a valid e-mail address.") from None
        if normalized not in clean:
            clean.append(normalized)
    return clean


# --- masking ------------------------------------------------------------------------------------------


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def mask_value(name: str, value: str) -> str:
    """How a stored header value is shown: secrets as ``****`` plus, for long ones, the last 4."""
    if not _looks_secret(name):
        return value
    return MASK + value[-4:] if len(value) >= 16 else MASK


def masked_headers(headers: dict) -> dict:
    return {name: mask_value(name, value) for name, value in (headers or {}).items()}


# --- create, change, delete ---------------------------------------------------------------------------


FORMATS = ("native", "commcare")


def validate_format(kind: str, value) -> str:
    """``native`` (the default) or ``commcare``; webhooks' events have only the native shape."""
    if value is None:
        return "native"
    if value not in FORMATS:
        raise _invalid("format", f"must be one of {', '.join(FORMATS)}.")
    if value == "commcare" and kind not in ("forms", "cases"):
        raise _invalid("format", "commcare is a format of forms and cases locations.")
    return value


def create_location(
    url,
    kind,
    headers=None,
    notify_emails=None,
    name: str = "",
    paused: bool = False,
    events=None,
    format=None,  # noqa: A002 - the API's field name
) -> ForwardLocation:
    """Validate and add a location to the current project (caller commits)."""
    kind = validate_kind(kind)
    location = ForwardLocation(
        format=validate_format(kind, format),
        url=validate_url(url),
        kind=kind,
        events=validate_events(kind, events),
        headers=validate_headers(headers),
        notify_emails=validate_emails(notify_emails),
        name=(name or "").strip()[:200],
        paused=bool(paused),
    )
    db.session.add(location)
    db.session.flush()
    transaction_cache(_CACHE).clear()
    log.info("forwarding location created location_id=%s kind=%s", location.id, location.kind)
    return location


def update_location(location: ForwardLocation, changes: dict) -> list[str]:
    """Apply validated changes (url, headers, notify_emails, name, paused, events); caller commits.
    Returns the names of the secret headers cleared because the URL's destination changed.
    A resumed location's sender is enqueued after the commit."""
    if "kind" in changes and changes["kind"] != location.kind:
        raise _invalid("kind", "cannot be changed; add another location instead.")
    stored = dict(location.headers or {})
    moved = False
    if "url" in changes:
        url = validate_url(changes["url"])
        moved = origin_of(url) != origin_of(location.url)
        location.url = url
    cleared: list[str] = []
    if "headers" in changes:
        # Moved: a masked value sent back does not bring the stored secret along.
        headers = validate_headers(changes["headers"], existing=None if moved else stored)
        location.headers = headers
    if moved:
        location.headers, cleared = _without_stored_secrets(
            location.headers or {}, stored, given="headers" in changes
        )
    if "notify_emails" in changes:
        location.notify_emails = validate_emails(changes["notify_emails"])
    if "name" in changes:
        location.name = _valid_name(changes["name"])
    if "events" in changes:
        location.events = validate_events(location.kind, changes["events"])
        transaction_cache(_CACHE).clear()
    if "format" in changes:
        location.format = validate_format(location.kind, changes["format"])
        transaction_cache(_CACHE).clear()
    if "paused" in changes:
        _pause_or_resume(location, changes["paused"])
    log.info(
        "forwarding location changed location_id=%s fields=%s secrets_cleared=%d",
        location.id,
        sorted(changes),
        len(cleared),
    )
    return cleared


def origin_of(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what decides where a request goes (the path does not)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    return scheme, host, parts.port or {"http": 80, "https": 443}.get(scheme)


def _without_stored_secrets(headers: dict, stored: dict, given: bool) -> tuple[dict, list[str]]:
    """``headers`` without the secret values that came from before the URL changed: all the
    stored secrets when no headers were given, else those given back in their masked form."""
    masked_before = {name.lower(): mask_value(name, value) for name, value in stored.items()}
    kept, cleared = {}, []
    for name, value in headers.items():
        from_before = not given or value == masked_before.get(name.lower())
        if _looks_secret(name) and name.lower() in masked_before and from_before:
            cleared.append(name)
        else:
            kept[name] = value
    return kept, cleared


def _valid_name(name) -> str:
    if name is not None and not isinstance(name, str):
        raise _invalid("name", "must be a string.")
    return (name or "").strip()[:200]


def _pause_or_resume(location: ForwardLocation, paused) -> None:
    """Set ``paused``; a resumed location's sender runs after the commit."""
    if not isinstance(paused, bool):
        raise _invalid("paused", "must be true or false.")
    resumed = location.paused and not paused
    location.paused = paused
    if resumed:
        after_commit(dispatch_location, location.id)


def delete_location(location: ForwardLocation) -> None:
    """Delete a location with its records and attempts (caller commits)."""
    db.session.delete(location)
    transaction_cache(_CACHE).clear()
    log.info("forwarding location deleted location_id=%s", location.id)


# --- look-ups -----------------------------------------------------------------------------------------


def location_ids_for(project_id: int, kind: str) -> dict[str, list[str]]:
    """The ids of the project's locations of ``kind`` by format (one indexed query, cached for
    the transaction)."""
    cache = transaction_cache(_CACHE)
    key = (project_id, kind)
    if key not in cache:
        by_format: dict[str, list[str]] = {}
        for location_id, shape in db.session.execute(
            select(ForwardLocation.id, ForwardLocation.format)
            .where(ForwardLocation.project_id == project_id, ForwardLocation.kind == kind)
            .execution_options(all_projects=True)
        ):
            by_format.setdefault(shape, []).append(location_id)
        cache[key] = by_format
    return cache[key]


def event_location_ids(project_id: int, event: str) -> list[str]:
    """The ids of the project's webhooks that receive ``event`` (one indexed query per transaction)."""
    cache = transaction_cache(_CACHE)
    key = (project_id, ForwardKind.EVENTS.value, "events")
    if key not in cache:
        # Core on the session's connection: this runs in every inbound webhook request and
        # every status callback, and two columns need none of the ORM's per-statement work.
        locations = ForwardLocation.__table__
        cache[key] = (
            db.session.connection()
            .execute(
                select(locations.c.id, locations.c.events).where(
                    locations.c.project_id == project_id, locations.c.kind == ForwardKind.EVENTS.value
                )
            )
            .all()
        )
    return [location_id for location_id, events in cache[key] if event in (events or ())]


def location_in_any_project(location_id: str) -> ForwardLocation | None:
    """The location, whatever the current project scope (jobs run before they know it)."""
    return db.session.execute(
        select(ForwardLocation).where(ForwardLocation.id == location_id).execution_options(all_projects=True)
    ).scalar_one_or_none()


def status_counts(location_ids: list[str]) -> dict[str, dict[str, int]]:
    """{location id: {status: count}} for the given locations, in one query."""
    counts = {loc: dict.fromkeys(RECORD_STATUSES, 0) for loc in location_ids}
    if not location_ids:
        return counts
    rows = db.session.execute(
        select(ForwardRecord.location_id, ForwardRecord.status, func.count())
        .where(ForwardRecord.location_id.in_(location_ids))
        .group_by(ForwardRecord.location_id, ForwardRecord.status)
    )
    for location_id, status, n in rows:
        counts[location_id][status] = n
    return counts
