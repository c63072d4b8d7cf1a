"""Password hashes for web users and mobile workers.

Rules:
- Hashes are werkzeug's, made with ``PASSWORD_HASH_METHOD`` (default ``scrypt``,
  werkzeug's own default: about 90 ms a hash on a machine like ours, which is the
  point). A stored hash names its method, so checking reads it from the hash and
  a change of method applies to new passwords only.
- Only the test configuration lowers the cost (as Django's test settings do):
  thousands of tests each create a project admin and log in, and two scrypt
  hashes a test were minutes of every CI run.
"""

from __future__ import annotations

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

DEFAULT_METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(
        password, method=current_app.config.get("PASSWORD_HASH_METHOD", DEFAULT_METHOD)
    )


def password_matches(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)
