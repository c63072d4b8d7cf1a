"""Fixtures shared by the forwarding tests."""

import pytest


@pytest.fixture
def config(app):
    """Set app config values for one test; the old values come back after it."""
    saved = {}

    def _set(**values):
        for key, value in values.items():
            saved.setdefault(key, app.config.get(key))
            app.config[key] = value

    yield _set
    app.config.update(saved)
