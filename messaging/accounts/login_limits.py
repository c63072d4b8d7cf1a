"""Limits on wrong passwords (filled in by the security work)."""


def init_app(app) -> None:
    """Bind the limits' Redis storage to ``app``."""
