"""WSGI entry point: ``gunicorn wsgi:app`` (and ``flask`` finds it here too)."""

from messaging import create_app

app = create_app()
