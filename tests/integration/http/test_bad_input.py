"""No 500 from bad input, on SQLite and PostgreSQL alike (README "Bad input").

Deep or huge JSON, a NUL or a lone surrogate anywhere (JSON strings and keys,
the address, the query, a form, the Twilio webhooks), edited or made-up
cursors and ids in other scripts' digits are refused with a 4xx before they
reach the database, and nothing is written. A write a database constraint
refuses anyway is a 409, and no web page answers a hostile id or query with a
5xx. (The API's operations are swept in ``test_api_fuzz.py``.)
"""

import base64
import json
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import select

from tests.conftest import recorded_queries
from tests.factories import POOL, send
from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, signed_inbound_request

JSON = {"Content-Type": "application/json"}


def error_code(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()["error"]["code"]


def group_names(api) -> list[str]:
    response = api.get("/api/v1/case-groups")
    assert response.status_code == 200
    return [g["name"] for g in response.get_json()["results"]]


def other_digits(number: int, zero: str = "\u0660") -> str:
    """``number`` written in another script's digits (Arabic-Indic by default)."""
    return "".join(chr(ord(zero) + int(d)) for d in str(number))


# --- JSON: depth, size, text ------------------------------------------------------


@pytest.mark.parametrize("depth", [5000, 100_000])
def test_json_nested_thousands_deep_is_400_not_a_recursion_error(api, depth):
    top = "[" * depth + "]" * depth
    assert error_code(api.post("/api/v1/case-groups", data=top, headers=JSON), 400) == "json_too_deep"
    inside = '{"name": "Deep", "extra": ' + top + "}"
    assert error_code(api.post("/api/v1/case-groups", data=inside, headers=JSON), 400) == "json_too_deep"
    assert group_names(api) == []


def test_json_over_the_size_limit_is_413(app, api):
    body = {"name": "x" * (app.config["MAX_JSON_BYTES"] + 1)}
    assert error_code(api.post("/api/v1/case-groups", json=body), 413) == "too_large"
    assert group_names(api) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "Amina \\ud800"}',
        '{"name": "Amina \\udfff x"}',
        '{"name": "Amina \\u0000"}',
        '{"name": "Fine", "\\u0000": 1}',
        '{"name": "Fine", "\\ud800": 1}',
        '{"name": "Fine", "extra": [{"deep": ["\\u0000"]}]}',
    ],
)
def test_nul_or_lone_surrogate_in_a_json_string_or_key_is_400_and_writes_nothing(api, body):
    assert error_code(api.post("/api/v1/case-groups", data=body, headers=JSON), 400) == "invalid_text"
    assert group_names(api) == []


def test_a_lone_surrogate_in_a_message_text_is_refused_before_sending(api):
    body = '{"phone": "+254712000001", "text": "Hello \\ud83d"}'
    assert error_code(api.post("/api/v1/messages", data=body, headers=JSON), 400) == "invalid_text"
    assert api.get("/api/v1/messages").get_json()["results"] == []
    # A whole surrogate pair is one ordinary character.
    fine = api.post(
        "/api/v1/messages", data='{"phone": "+254712000001", "text": "Hi \\ud83d\\ude00"}', headers=JSON
    )
    assert fine.status_code == 201 and fine.get_json()["body"] == "Hi 😀"


# --- NUL in the address, the query and forms -----------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages?case_id=a%00b",
        "/api/v1/cases?q=%00",
        "/api/v1/case-groups/abc%00def",
        "/api/v1/surveys?cursor=%00",
    ],
)
def test_nul_in_an_api_address_or_query_is_400(api, path):
    assert error_code(api.get(path), 400) == "invalid_text"


def test_nul_in_a_web_query_is_a_400_page(web):
    response = web.get("/cases?q=Amina%00")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "NUL character" in response.get_data(as_text=True)


def test_nul_in_a_web_form_is_a_400_page_and_writes_nothing(web, api):
    response = web.post("/case-groups", {"name": "Bad\x00name"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert group_names(api) == []
    assert web.post("/case-groups", {"name": "Good name"}).status_code == 302
    assert group_names(api) == ["Good name"]


# --- the Twilio webhooks: nothing reaches the database before the request is plausible ---


def signed(path: str, params: dict) -> tuple[dict, dict]:
    return signed_inbound_request(DEFAULT_AUTH_TOKEN, f"http://localhost{path}", params)


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
@pytest.mark.parametrize("field", ["AccountSid", "From", "Body", "MessageSid"])
def test_a_nul_in_a_webhook_form_is_refused_without_a_query(app, twilio_project, path, field):
    params = {"AccountSid": DEFAULT_ACCOUNT_SID, "From": "+254712000001", "To": POOL[0], "Body": "hi"}
    params["MessageStatus"] = "delivered"
    params[field] = params.get(field, "SM" + "a" * 32) + "\x00"
    data, headers = signed(path, params)
    with recorded_queries(app) as queries:
        response = app.test_client().post(path, data=data, headers=headers)
    assert response.status_code == 400
    assert queries == []
    with twilio_project.scope():
        from messaging.extensions import db
        from messaging.models import Message

        assert db.session.execute(select(Message)).first() is None


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
@pytest.mark.parametrize("account_sid", ["", "AC123", "AC" + "g" * 32, "x" * 5000, DEFAULT_ACCOUNT_SID + "0"])
def test_a_malformed_account_sid_is_403_without_a_query(app, path, account_sid):
    params = {"AccountSid": account_sid, "From": "+254712000001", "To": POOL[0], "Body": "hi"}
    data, headers = signed(path, params)
    with recorded_queries(app) as queries:
        response = app.test_client().post(path, data=data, headers=headers)
    assert response.status_code == 403
    assert queries == []


@pytest.mark.parametrize("path", ["/twilio/inbound", "/twilio/status"])
def test_an_unsigned_request_is_403_without_a_query(app, path):
    params = {"AccountSid": DEFAULT_ACCOUNT_SID, "From": "+254712000001", "To": POOL[0], "Body": "hi"}
    with recorded_queries(app) as queries:
        response = app.test_client().post(path, data=params)
    assert response.status_code == 403
    assert queries == []


def test_a_well_formed_unknown_account_costs_one_look_up(app):
    params = {"AccountSid": "AC" + "9" * 32, "From": "+254712000001", "To": POOL[0], "Body": "hi"}
    data, headers = signed("/twilio/inbound", params)
    with recorded_queries(app) as queries:
        response = app.test_client().post("/twilio/inbound", data=data, headers=headers)
    assert response.status_code == 403
    assert len(queries) == 1 and "sms_gateways" in queries[0]


# --- cursors ---------------------------------------------------------------------


def cursor_of(next_url: str) -> str:
    return parse_qs(urlsplit(next_url).query)["cursor"][0]


def user_cursor(api) -> str:
    for name in ("u1", "u2", "u3"):
        assert api.post("/api/v1/users", json={"username": name}).status_code == 201
    first = api.get("/api/v1/users?limit=1").get_json()
    return cursor_of(first["next"])


def test_a_real_cursor_pages_on(api):
    cursor = user_cursor(api)
    page = api.get("/api/v1/users", query_string={"limit": 1, "cursor": cursor}).get_json()
    assert [u["username"] for u in page["results"]] == ["u2"]


URLSAFE_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flipped(text: str, at: int) -> str:
    """``text`` with the character at ``at`` changed so that the bytes it encodes change too:
    the high bit of its base64 digit flips (the last digit of unpadded base64 carries
    unused low bits, so changing only those would decode to the same bytes)."""
    at %= len(text)
    char = text[at]
    if char in URLSAFE_B64:
        other = URLSAFE_B64[URLSAFE_B64.index(char) ^ 32]
    else:
        other = "A"
    return text[:at] + other + text[at + 1 :]


@pytest.mark.parametrize("at", [0, 5, -3, -1])
def test_an_edited_cursor_is_400(api, at):
    cursor = flipped(user_cursor(api), at)
    assert error_code(api.get("/api/v1/users", query_string={"cursor": cursor}), 400) == "invalid_cursor"


def test_a_made_up_cursor_in_the_old_unsigned_form_is_400(api):
    user_cursor(api)
    for plain in ([{"dt": "2030-01-01T00:00:00"}, "zzzz"], [{"dt": "not a date"}, 1], ["x", "y"]):
        made_up = base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")
        response = api.get("/api/v1/users", query_string={"cursor": made_up})
        assert error_code(response, 400) == "invalid_cursor"
        assert error_code(api.get("/api/v1/cases", query_string={"cursor": made_up}), 400) == "invalid_cursor"


def signed_cursor(app, path: str, values) -> str:
    """A cursor signed with the app's key for the endpoint at ``path``, with any values at all."""
    from messaging.http.api.pagination import encode_cursor

    with app.test_request_context(path):
        return encode_cursor(values)


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/api/v1/users", [1, 2]),
        ("/api/v1/users", ["2030-01-01T00:00:00", "abc"]),
        ("/api/v1/users", [{"dt": "not a date"}, "abc"]),
        ("/api/v1/users", [{"dt": "2030-01-01T00:00:00"}, 5]),
        ("/api/v1/users", [{"dt": "2030-01-01T00:00:00"}, "abc", "extra"]),
        ("/api/v1/users", [{"dt": "2030-01-01T00:00:00"}, "x" * 10_000]),
        ("/api/v1/users", [None, None]),
        ("/api/v1/users", {"dt": 1}),
        ("/api/v1/cases", [{"dt": "2030-01-01T00:00:00"}, "not a number"]),
        ("/api/v1/cases", [{"dt": "2030-01-01T00:00:00"}, 10**30]),
        ("/api/v1/messages", ["5"]),
        ("/api/v1/messages", [True]),
        ("/api/v1/messages", [1.5]),
        ("/api/v1/messages", [-(2**70)]),
        ("/api/v1/broadcasts", [{"dt": "2030-01-01T00:00:00"}, 7]),
    ],
)
def test_a_signed_cursor_with_values_of_the_wrong_type_is_400(app, api, path, values):
    response = api.get(path, query_string={"cursor": signed_cursor(app, path, values)})
    assert error_code(response, 400) == "invalid_cursor"


def test_a_cursor_from_another_list_is_400(api):
    cursor = user_cursor(api)
    assert error_code(api.get("/api/v1/groups", query_string={"cursor": cursor}), 400) == "invalid_cursor"


def test_a_cursor_signed_with_another_key_is_400(app, api):
    user_cursor(api)
    saved = app.config["SECRET_KEY"]
    try:
        app.config["SECRET_KEY"] = "another-key"
        forged = signed_cursor(app, "/api/v1/users", [{"dt": "2030-01-01T00:00:00"}, "zzzz"])
    finally:
        app.config["SECRET_KEY"] = saved
    assert error_code(api.get("/api/v1/users", query_string={"cursor": forged}), 400) == "invalid_cursor"


# --- integer ids ------------------------------------------------------------------


def test_message_ids_in_other_digits_or_past_bigint_are_404(project, api):
    message_id = send(project)
    assert api.get(f"/api/v1/messages/{message_id}").status_code == 200
    for raw in (
        other_digits(message_id),
        other_digits(message_id, zero="\u0966"),  # Devanagari
        "\u00b3",  # superscript three: isdigit() but not int()
        "99999999999999999999999",
        str(2**63),
        "9" * 5000,
        "-1",
    ):
        assert error_code(api.get(f"/api/v1/messages/{raw}"), 404) == "not_found", raw


def test_a_web_int_route_with_other_digits_or_past_bigint_is_404(app, project, web, api):
    from messaging.extensions import db
    from messaging.models import ApiToken

    with project.scope():
        token_id = db.session.execute(select(ApiToken.id)).scalar_one()
    for raw in (other_digits(token_id), "\u00b3", "99999999999999999999999"):
        assert web.post(f"/settings/tokens/{raw}/revoke").status_code == 404, raw
    assert api.get("/api/v1/case-groups").status_code == 200  # the token still works


# --- a write a database constraint refuses --------------------------------------------


@pytest.mark.parametrize(("path", "field"), [("/api/v1/groups", "name"), ("/api/v1/users", "username")])
def test_the_same_name_twice_with_a_non_ascii_capital_is_409(api, path, field):
    # SQLite's lower() folds ASCII only, so the domain's check can miss what the unique constraint catches.
    assert api.post(path, json={field: "Émile"}).status_code == 201
    assert api.post(path, json={field: "Émile"}).status_code == 409


def test_a_web_form_refused_by_a_constraint_is_a_409_page(web, api):
    assert web.post("/people/groups", {"name": "Émile"}).status_code == 302
    response = web.post("/people/groups", {"name": "Émile"})
    assert response.status_code in (302, 409), response.status_code  # flashed by the domain, or the 409 page
    assert [g["name"] for g in api.get("/api/v1/groups").get_json()["results"]] == ["Émile"]


# --- every web page ------------------------------------------------------------------

HOSTILE = ["\u00b3", "\u0663", "99999999999999999999999", "9" * 5000, "-1"]
PAGE_QUERY_KEYS = ["q", "cursor", "page", "status", "direction", "case_type", "owner", "pick", "limit"]


def test_hostile_ids_and_queries_on_every_web_page_are_never_a_server_error(app, web):
    server_errors = []
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("web.") and "GET" in r.methods]
    assert len(rules) > 20
    for rule in rules:
        for raw in HOSTILE:
            path = re.sub(r"<[^>]+>", quote(raw, safe=""), rule.rule)
            queries = [{key: raw for key in PAGE_QUERY_KEYS}, {"before": f"2026-01-01T00:00:00~{raw}"}]
            for query in queries if not rule.arguments else [{}]:
                status = web.get(path, query_string=query).status_code
                if status >= 500:
                    server_errors.append(f"GET {path[:80]} {str(query)[:80]}: {status}")
    assert not server_errors, "\n".join(server_errors)
