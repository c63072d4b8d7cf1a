"""Security headers on every response: pages, API answers, error pages, static files, webhooks.

Rules:
- Every response carries a Content-Security-Policy that allows scripts, styles,
  images, forms and everything else from this site only (images also as
  ``data:`` URLs), no plugins, no ``<base>`` elsewhere, and no framing at all
  (``frame-ancestors 'none'``, with ``X-Frame-Options: DENY`` for older browsers).
  No ``'unsafe-inline'``: the templates hold no inline script, handler or style
  attribute; page scripts live in ``messaging/static/``.
- ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: strict-origin-when-cross-origin`` on every response.
- HSTS only when ``HSTS`` is set (production) and only on HTTPS requests (as
  seen through the proxy); never a redirect to HTTPS here: TLS ends at the
  proxy and a local ``http://`` install must keep working.
- The session cookie's settings stay the configuration's (``SESSION_COOKIE_*``):
  Talisman's own defaults (``Secure`` forced on every request, ``SameSite``
  overwritten) are not applied.
"""

from flask_talisman import DENY, Talisman

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

REFERRER_POLICY = "strict-origin-when-cross-origin"


def init_app(app) -> None:
    """Install the headers on ``app`` (reads ``HSTS`` and ``SESSION_COOKIE_*`` from its config)."""
    Talisman(
        app,
        force_https=False,
        frame_options=DENY,
        content_security_policy=CONTENT_SECURITY_POLICY,
        referrer_policy=REFERRER_POLICY,
        x_content_type_options=True,
        strict_transport_security=bool(app.config.get("HSTS")),
        # Talisman writes these into the config (Secure on every request, SameSite at
        # start-up): handing it the config's own values makes both writes no-ops.
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        session_cookie_http_only=bool(app.config.get("SESSION_COOKIE_HTTPONLY", True)),
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE"),
    )
