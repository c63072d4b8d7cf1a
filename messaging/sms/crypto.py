"""Encrypting gateway secrets at rest with a key derived from SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived by HKDF-SHA256 from the
app's SECRET_KEY, so a database dump alone does not reveal Twilio auth tokens.
Changing SECRET_KEY makes stored tokens unreadable: enter them again.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_INFO = b"messaging:gateway-secrets:v1"


def _fernet(secret_key: str | None = None) -> Fernet:
    return _fernet_for(secret_key or current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _fernet_for(secret: str) -> Fernet:
    # Derived once per process and key: every inbound webhook decrypts a token.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str, secret_key: str | None = None) -> str:
    return _fernet(secret_key).encrypt(plain.encode()).decode()


def decrypt(token: str, secret_key: str | None = None) -> str | None:
    """The plain text, or None when it was encrypted under another SECRET_KEY."""
    return _decrypt(token, secret_key or current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=64)
def _decrypt(token: str, secret: str) -> str | None:
    # Remembered per process: every send job and inbound webhook decrypts the same
    # few tokens (a Fernet check and decryption was about 1% of a send job's CPU).
    try:
        return _fernet_for(secret).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
