"""The console gateway: the text on the console in development only, never in the logs."""

import logging

PHONE = "+254712000041"
TEXT = "Your test result is ready: negative."


def _send(project):
    from messaging.gateways.console import ConsoleGateway

    with project.scope():
        return ConsoleGateway(console_settings(project)).send(PHONE, TEXT, "+15005550006", None)


def test_outside_development_it_logs_the_sid_and_the_last_four_digits_only(app, project, caplog, capsys):
    assert app.config["APP_ENV"] == "test"
    caplog.set_level(logging.INFO)
    result = _send(project)
    printed = capsys.readouterr()
    assert printed.out == "" and TEXT not in printed.err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TEXT not in logged and PHONE not in logged and PHONE.lstrip("+") not in logged, logged
    assert f"sid={result.sid} to=+***0041 chars={len(TEXT)}" in logged, logged


def test_in_development_it_prints_the_message_to_the_console(app, project, caplog, capsys):
    caplog.set_level(logging.INFO)
    saved = app.config["APP_ENV"]
    app.config["APP_ENV"] = "development"
    try:
        result = _send(project)
    finally:
        app.config["APP_ENV"] = saved
    out = capsys.readouterr().out
    assert result.sid in out and PHONE in out and TEXT in out
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert TEXT not in logged and PHONE not in logged, logged  # the console, not the logs


def test_the_recorded_message_is_still_found_by_its_sid(app, project):
    """The Redis record keeps the number and the text: the sweep resolves unknown outcomes with it."""
    from messaging.gateways.console import ConsoleGateway

    result = _send(project)
    with project.scope():
        remote = ConsoleGateway(console_settings(project)).fetch(result.sid)
    assert remote.to == PHONE and remote.body == TEXT


def console_settings(project):
    from messaging.gateways.base import GatewaySettings

    return GatewaySettings(id=None, project_id=project.id, kind="console")
