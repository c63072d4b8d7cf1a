"""API tokens of web users: issuing one, revoking one.

Rules:
- A token is issued to a web user under a name (trimmed); its key is returned
  once and only its SHA-256 is stored (``ApiToken.issue``).
- A user revokes their own tokens; only an admin revokes another person's
  (422 ``not_your_token``). A revoked token stops working at once: the API
  refuses it.
- Logs name the token and the users by id, never the key.
- Domain functions do not commit: the caller owns the transaction.
"""

from __future__ import annotations

import logging

from messaging.errors import RuleBroken
from messaging.extensions import db
from messaging.lib import clock
from messaging.models import ApiToken, WebUser

log = logging.getLogger(__name__)


def issue(user: WebUser, name: str) -> tuple[ApiToken, str]:
    """A new token of ``user`` (flushed) and its one-time key."""
    token, key = ApiToken.issue(user, name.strip())
    db.session.flush()
    log.info("api token created token_id=%s user_id=%s project_id=%s", token.id, user.id, user.project_id)
    return token, key


def revoke(actor: WebUser, token: ApiToken) -> None:
    """``actor`` revokes ``token``: their own, or anyone's in the project when ``actor`` is an admin."""
    if token.user_id != actor.id and not actor.can("admin"):
        raise RuleBroken("not_your_token", "Only an admin can revoke another person's token.")
    token.revoked_at = clock.now()
    log.info(
        "api token revoked token_id=%s user_id=%s project_id=%s by_user_id=%s",
        token.id,
        token.user_id,
        token.project_id,
        actor.id,
    )
