"""The input guard on a bare Flask app: what it refuses, how it measures JSON, the strict ``int``."""

import json

import pytest
from flask import Flask, jsonify, request

from messaging.http import input_guard
from messaging.http.input_guard import has_unstorable_text, json_depth, json_has_unstorable_text
from messaging.http.lookup import MAX_ID, parse_id


@pytest.fixture
def client():
    app = Flask(__name__)
    app.config.update(MAX_JSON_DEPTH=64, MAX_JSON_BYTES=2 * 1024 * 1024, TESTING=True)
    input_guard.init_app(app)

    @app.route("/echo", methods=["GET", "POST"])
    def echo():
        return jsonify({"args": request.args, "form": request.form, "json": request.get_json(silent=True)})

    @app.route("/api/v1/echo", methods=["POST"])
    def api_echo():
        return jsonify(request.get_json())

    @app.route("/items/<int:item_id>")
    def item(item_id):
        return jsonify({"id": item_id})

    return app.test_client()


@pytest.mark.parametrize(
    ("data", "depth"),
    [
        (b"1", 0),
        (b"{}", 1),
        (b'[[1], {"a": [2]}]', 3),
        (b'["[[[{{{", "\\"[["]', 1),  # brackets inside strings, escaped quotes included
        (b'"[[[', 0),  # an unterminated string runs to the end
        (b"[" * 5000 + b"]" * 5000, 5000),
        (b"[" * 1_000_000, 1_000_000),
    ],
)
def test_json_depth_counts_brackets_outside_strings(data, depth):
    assert json_depth(data) == depth


def test_unstorable_text_is_a_nul_or_a_lone_surrogate():
    assert has_unstorable_text("a\x00b") and has_unstorable_text("\ud800") and has_unstorable_text("x\udfff")
    assert not has_unstorable_text("Amina 😀 ٣ ³ é")
    assert json_has_unstorable_text(json.loads('{"a": [1, {"b": "\\ud800"}]}'))
    assert json_has_unstorable_text(json.loads('{"a": [1, {"\\u0000": "b"}]}'))
    assert not json_has_unstorable_text(json.loads('{"a": ["\\ud83d\\ude00", "\\\\u0000"]}'))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        ("9" * 23, None),
        ("9" * 5000, None),
        ("³", None),
        ("٣", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("", None),
        (7, 7),
        (True, None),
        (-3, None),
        (None, None),
    ],
)
def test_parse_id_reads_ascii_digits_within_bigint(raw, expected):
    assert parse_id(raw) == expected


def test_the_app_json_loader_refuses_deep_text_without_a_recursion_error(client):
    loads = client.application.json.loads
    assert loads("[[1]]") == [[1]]
    for depth in (65, 5000, 100_000):
        with pytest.raises(ValueError):
            loads("[" * depth + "]" * depth)


@pytest.mark.parametrize("depth", [5000, 100_000])
def test_deep_json_is_refused_on_any_path(client, depth):
    body = "[" * depth + "]" * depth
    api = client.post("/api/v1/echo", data=body, content_type="application/json")
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "json_too_deep"
    assert client.post("/echo", data=body, content_type="application/json").status_code == 400


def test_json_at_the_depth_limit_passes(client):
    body = "[" * 64 + "]" * 64
    assert client.post("/api/v1/echo", data=body, content_type="application/json").status_code == 200


def test_json_over_the_size_limit_is_413(client):
    client.application.config["MAX_JSON_BYTES"] = 100
    response = client.post("/api/v1/echo", json={"text": "x" * 200})
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    assert client.post("/api/v1/echo", json={"text": "x" * 50}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "a\\u0000b"}',
        '{"name": "a\\ud800"}',
        '{"a\\u0000": 1}',
        '{"\\udc00": 1}',
        '[[{"x": ["\\ud800"]}]]',
    ],
)
def test_unstorable_text_in_json_is_refused(client, body):
    response = client.post("/api/v1/echo", data=body, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_text"


def test_an_escaped_backslash_before_u0000_is_plain_text(client):
    response = client.post("/api/v1/echo", data='{"name": "\\\\u0000"}', content_type="application/json")
    assert response.status_code == 200 and response.get_json() == {"name": "\\u0000"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/echo?q=a%00b", {}),
        ("get", "/echo?a%00=b", {}),
        ("get", "/ech%00o", {}),
        ("post", "/echo", {"data": {"name": "a\x00b"}}),
        ("post", "/echo", {"data": {"na\x00me": "ab"}}),
        ("post", "/echo", {"data": {"name": "a\x00b"}, "content_type": "multipart/form-data"}),
    ],
)
def test_a_nul_in_the_address_the_query_or_a_form_is_400(client, method, path, kwargs):
    assert getattr(client, method)(path, **kwargs).status_code == 400


def test_file_contents_are_not_checked(client):
    import io

    response = client.post(
        "/echo", data={"upload": (io.BytesIO(b"\x00\x01binary"), "sheet.xlsx"), "name": "fine"}
    )
    assert response.status_code == 200


def test_clean_input_passes(client):
    response = client.get("/echo?q=Amina+%F0%9F%98%80")
    assert response.status_code == 200 and response.get_json()["args"] == {"q": "Amina 😀"}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/items/12", 200),
        (f"/items/{MAX_ID}", 200),
        (f"/items/{MAX_ID + 1}", 404),
        ("/items/99999999999999999999999", 404),
        ("/items/" + "9" * 5000, 404),
        ("/items/٣", 404),
        ("/items/³", 404),
        ("/items/-1", 404),
    ],
)
def test_int_in_a_rule_is_ascii_digits_within_bigint(client, path, status):
    assert client.get(path).status_code == status
