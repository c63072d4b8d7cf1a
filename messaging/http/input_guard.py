"""Input refused before it reaches a view (filled in by the security work)."""


def init_app(app) -> None:
    """Install the guard on ``app``."""
