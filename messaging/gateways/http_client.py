"""Kept-alive HTTP sessions for the providers spoken to with plain ``requests``, and their timeout.

Rules:
- One session per process per key (the credentials and the host), made once
  under a lock and kept: its connection pool stays alive across jobs, which
  is most of the speed of a send.
- A session reads the environment's proxy and CA settings once (``trust_env``
  off): requests would otherwise re-read the whole environment on every
  request (about half a millisecond per message where the environment is large).
- The headers and auth given when it is made go with every request.
- Every provider's requests time out after ``SMS_HTTP_TIMEOUT`` seconds (to
  connect, and for each read).
"""

from __future__ import annotations

import os
import threading

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

_sessions: dict[tuple, requests.Session] = {}
_lock = threading.Lock()


def http_timeout() -> float:
    """Seconds a provider's request may take to connect, and each read."""
    return float(current_app.config.get("SMS_HTTP_TIMEOUT", 10.0))


def kept_session(
    key: tuple, base_url: str, headers: dict | None = None, auth: tuple[str, str] | None = None
) -> requests.Session:
    """The process's session for ``key`` (made on first use, then kept)."""
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = _new_session(base_url, headers or {}, auth)
    return session


def _new_session(base_url: str, headers: dict, auth: tuple[str, str] | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", **headers})
    if auth is not None:
        session.auth = auth
    return session
