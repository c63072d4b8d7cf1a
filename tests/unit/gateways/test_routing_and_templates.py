"""Pure rules of the gateways: which gateway a number takes, and the generic HTTP gateway's templates."""

import json
from dataclasses import dataclass, field

from messaging.gateways.http_generic import fill, json_escape, read_path, url_escape
from messaging.gateways.routing import choose


@dataclass
class Gw:
    id: int
    is_default: bool = False
    prefixes: list = field(default_factory=list)


def test_the_longest_prefix_wins_and_anything_else_takes_the_default():
    default, kenya, safaricom, tanzania = (
        Gw(1, True),
        Gw(2, prefixes=["+254"]),
        Gw(3, prefixes=["+25471"]),
        Gw(4, prefixes=["+255", "+256"]),
    )
    gateways = [kenya, default, safaricom, tanzania]
    assert choose("+254722000001", gateways) is kenya
    assert choose("+254712000001", gateways) is safaricom
    assert choose("+256772000001", gateways) is tanzania
    assert choose("+14155550100", gateways) is default
    assert choose("+2547", [kenya, default]) is kenya


def test_a_pinned_gateway_wins_while_it_exists():
    default, kenya = Gw(1, True), Gw(2, prefixes=["+254"])
    assert choose("+254722000001", [default, kenya], pinned=1) is default
    assert choose("+254722000001", [default, kenya], pinned=99) is kenya  # removed since: routed as usual


def test_without_a_default_the_first_gateway_takes_what_no_prefix_matches():
    kenya, uganda = Gw(2, prefixes=["+254"]), Gw(3, prefixes=["+256"])
    assert choose("+14155550100", [kenya, uganda]) is kenya


def test_read_path_walks_objects_and_lists_and_answers_none_for_anything_missing():
    data = {"data": {"items": [{"id": 7}, {"id": "x"}]}, "ok": True}
    assert read_path(data, "data.items.1.id") == "x"
    assert read_path(data, "data.items.0.id") == 7
    assert read_path(data, "data.items.5.id") is None
    assert read_path(data, "ok.deeper") is None
    assert read_path(data, "missing") is None
    assert read_path([{"a": 1}], "0.a") == 1


def test_each_value_is_escaped_for_where_it_lands():
    values = {"to": "+254712000001", "text": 'say "hi" & go\\now\n', "from": "", "message_ref": "r1"}
    url = fill("https://x.example/send?to={to}&m={text}&ref={message_ref}", values, url_escape)
    assert url == "https://x.example/send?to=%2B254712000001&m=say%20%22hi%22%20%26%20go%5Cnow%0A&ref=r1"
    body = fill('{"to": "{to}", "text": "{text}", "keep": {"a": 1}}', values, json_escape)
    assert json.loads(body) == {"to": "+254712000001", "text": 'say "hi" & go\\now\n', "keep": {"a": 1}}
    # A placeholder the template does not know stays as written.
    assert fill("{unknown} {to}", values, url_escape) == "{unknown} %2B254712000001"
