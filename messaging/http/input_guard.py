"""Input refused before it reaches a view: text no database stores, JSON too deep or too big, odd ids.

Rules:
- Every request (API, web pages, webhooks) whose path, query string (names and
  values), form fields (names and values, urlencoded or multipart, and the
  names of uploaded files, not their contents) or JSON body (every key and
  every string, at any depth) holds a NUL (U+0000) or a lone surrogate
  (U+D800-U+DFFF) is refused with 400 ``invalid_text`` before any view or
  query runs: PostgreSQL cannot store a NUL and no driver can encode a lone
  surrogate, so either would otherwise be a 500 half-way through a view.
- A JSON body larger than ``MAX_JSON_BYTES`` is refused with 413 ``too_large``
  and one nested deeper than ``MAX_JSON_DEPTH`` with 400 ``json_too_deep``,
  both measured on the raw bytes before parsing and without recursion, so a
  body nested a million deep costs one linear scan and never a
  ``RecursionError``. The app's JSON loader measures the depth too: a
  ``request.get_json()`` that somehow skipped the guard still fails cleanly
  (a 400 for a bad body), never with a ``RecursionError``.
- ``<int:...>`` in a URL rule matches ASCII digits only (Python's ``\\d``
  also matches other scripts' digits, and ``int()`` reads them) and values a
  BIGINT holds; anything else does not match, so it is a 404 like an id that
  does not exist.
- Refusals under ``/api/`` answer the API's JSON error; elsewhere they raise
  the HTTP error, which the app's handlers render (an error page for web
  pages, a plain JSON 400 for the webhooks).
"""

import logging
import operator
import re
from itertools import accumulate, repeat

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from messaging.http.api.errors import error_response
from messaging.http.lookup import MAX_ID, MAX_ID_DIGITS

log = logging.getLogger(__name__)

# A NUL or half of a UTF-16 surrogate pair on its own.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")

# A JSON string token, escapes included; the closing quote is optional so the
# pattern never fails and never backtracks (an unterminated string runs to the
# end): one linear pass over any input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets become 2 and closing ones 0, so "value - 1" is the step in depth.
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def has_unstorable_text(text: str | None) -> bool:
    """True when ``text`` holds a NUL or a lone surrogate (a multipart part may have no name: None)."""
    return text is not None and UNSTORABLE_TEXT.search(text) is not None


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in the JSON text ``data`` (brackets inside strings do not count).

    Linear and without recursion; meant for text that may not even be valid JSON.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = map(operator.sub, brackets.translate(_DEPTH_STEPS), repeat(1))
    return max(accumulate(steps), default=0)


def json_has_unstorable_text(value) -> bool:
    """True when any key or string of the parsed JSON ``value`` holds a NUL or a lone surrogate.

    Walks with an explicit stack, not recursion.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if has_unstorable_text(item):
                return True
        elif isinstance(item, dict):
            for key, child in item.items():
                if has_unstorable_text(key):
                    return True
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
    return False


class AsciiIntegerConverter(IntegerConverter):
    """``<int:...>``: ASCII digits only, at most what a BIGINT holds (else the rule does not match)."""

    regex = rf"[0-9]{{1,{MAX_ID_DIGITS}}}"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class DepthLimitedJSONProvider(DefaultJSONProvider):
    """The app's JSON: ``loads`` refuses text nested deeper than ``MAX_JSON_DEPTH`` with a ValueError.

    ``request.get_json()`` turns that ValueError into a 400 (or None when ``silent``).
    """

    def __init__(self, app) -> None:
        super().__init__(app)
        self.config = app.config  # the settings, not the app: no reference cycle

    def loads(self, s, **kwargs):
        data = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else bytes(s)
        if json_depth(data) > self.config["MAX_JSON_DEPTH"]:
            raise ValueError("JSON nested too deeply")
        return super().loads(s, **kwargs)


class Refused(Exception):
    """A request the guard turns away: its status, code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_text(pairs, where: str) -> None:
    """Refuse when a name or value of ``pairs`` (``(name, values)``) holds unstorable text."""
    for name, values in pairs:
        if has_unstorable_text(name) or any(has_unstorable_text(v) for v in values):
            raise Refused(400, "invalid_text", f"The {where} holds a NUL character or a broken character.")


def check_json_body() -> None:
    """Refuse a JSON body too big, too deep, or with unstorable text; leaves it parsed (cached) if fine."""
    limit = current_app.config["MAX_JSON_BYTES"]
    too_big = Refused(413, "too_large", f"The JSON body is larger than {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    request.max_content_length = limit  # a body without Content-Length stops at the limit too
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise too_big from exc
    # Parsed once, and cached for the view: the app's loader measures the depth first.
    body = request.get_json(silent=True)
    if body is None and data:
        depth_limit = current_app.config["MAX_JSON_DEPTH"]
        if json_depth(data) > depth_limit:
            raise Refused(400, "json_too_deep", f"The JSON body nests deeper than {depth_limit} levels.")
        return  # not JSON at all: the view's to refuse
    if json_has_unstorable_text(body):
        raise Refused(400, "invalid_text", "The JSON body holds a NUL character or a broken character.")


def check_request():
    """Refuse what no view should see (before any blueprint's ``before_request`` and any view).

    Only the CSRF check, which reads no database, runs earlier.
    """
    try:
        if has_unstorable_text(request.path):
            raise Refused(400, "invalid_text", "The address holds a NUL character or a broken character.")
        check_text(request.args.lists(), "query string")
        if request.is_json:
            check_json_body()
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            check_text(request.form.lists(), "form")
            names = [(name, [f.filename or "" for f in files]) for name, files in request.files.lists()]
            check_text(names, "upload")
    except Refused as refused:
        log.info("request refused: %s %r code=%s", request.method, request.path[:200], refused.code)
        if request.path.startswith("/api/"):
            return error_response(refused.status, refused.code, refused.message)
        if refused.status == 413:
            raise RequestEntityTooLarge(refused.message) from None
        raise BadRequest(refused.message) from None
    return None


def init_app(app) -> None:
    """Install the guard on ``app``: before the blueprints, so their rules use the strict ``int``."""
    app.url_map.converters["int"] = AsciiIntegerConverter
    app.json = DepthLimitedJSONProvider(app)
    app.before_request(check_request)
