"""Security headers on every response (filled in by the security work)."""


def init_app(app) -> None:
    """Install the headers on ``app``."""
