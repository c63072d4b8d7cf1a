"""Pure pieces of the send pipeline: error classes, sticky senders, secret encryption."""

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from messaging.gateways.base import pick_sender
from messaging.gateways.twilio import classify_exception
from messaging.sms import crypto


def _twilio(status, code):
    return TwilioRestException(status, "https://api.twilio.com/x", msg=f"error {code}", code=code)


@pytest.mark.parametrize(
    "exc, code, retryable, unknown, opted_out",
    [
        (_twilio(500, 20500), "20500", True, False, False),
        (_twilio(503, None), "503", True, False, False),
        (_twilio(429, 20429), "20429", True, False, False),
        (_twilio(400, 21211), "21211", False, False, False),
        (_twilio(400, 21614), "21614", False, False, False),
        (_twilio(400, 21610), "21610", False, False, True),
        (_twilio(401, 20003), "20003", False, False, False),
        (requests.exceptions.ConnectTimeout(), "connect_timeout", True, False, False),
        (requests.exceptions.ReadTimeout(), "timeout", True, True, False),
        (requests.exceptions.ConnectionError("Connection refused"), "connection_error", True, False, False),
        (requests.exceptions.ConnectionError("RemoteDisconnected"), "connection_error", True, True, False),
    ],
)
def test_error_classes(exc, code, retryable, unknown, opted_out):
    err = classify_exception(exc)
    assert (err.code, err.retryable, err.outcome_unknown, err.opted_out) == (
        code,
        retryable,
        unknown,
        opted_out,
    )


def test_unexpected_exceptions_are_not_swallowed():
    with pytest.raises(KeyError):
        classify_exception(KeyError("bug"))


def test_sticky_sender_is_stable_and_spread():
    pool = ["+15005550006", "+15005550007", "+15005550008"]
    # sha1, not Python's salted hash(): the same answer in every process, every run.
    assert pick_sender("+254712345678", pool) == pick_sender("+254712345678", list(pool))
    assert pick_sender("+254712345678", pool) == "+15005550006"  # sha1 -> first 8 bytes mod 3
    counts = {n: 0 for n in pool}
    for i in range(3000):
        counts[pick_sender(f"+2547{i:08d}", pool)] += 1
    assert min(counts.values()) > 850
    assert pick_sender("+254712345678", []) is None


def test_secrets_round_trip_and_need_the_same_key():
    token = crypto.encrypt("s3cret", "key-one")
    assert "s3cret" not in token
    assert crypto.decrypt(token, "key-one") == "s3cret"
    assert crypto.decrypt(token, "key-two") is None
    assert crypto.decrypt("garbage", "key-one") is None


@pytest.mark.parametrize(
    "mps, numbers, project_mps, size",
    [
        (1000, 3, None, 250),  # a fast gateway: capped, so a killed worker leaves at most 250 in `sending`
        (100, 3, None, 250),
        (10, 3, None, 30),  # about one second of the pool's rate
        (10, 3, 5, 5),  # the project's own limit wins
        (None, 0, None, 100),  # no rate set: 100 a second assumed
    ],
)
def test_a_send_job_claims_about_a_second_of_sending_at_a_time(mps, numbers, project_mps, size):
    from messaging.models import GatewayConfig
    from messaging.sms.sending import MAX_CHUNK, chunk_size

    cfg = GatewayConfig(
        kind="twilio",
        mps=mps,
        from_numbers=[f"+1500555000{i}" for i in range(numbers)],
        project_mps=project_mps,
    )
    assert chunk_size([cfg]) == size <= MAX_CHUNK


def test_a_chunk_is_about_a_second_of_all_the_gateways_together():
    from messaging.models import GatewayConfig
    from messaging.sms.sending import chunk_size

    twilio = GatewayConfig(kind="twilio", mps=10, from_numbers=["+15005550006", "+15005550007"])
    # A sender-ID gateway sends from one sender whatever numbers are listed.
    africastalking = GatewayConfig(
        kind="africastalking", mps=20, from_numbers=["+254700000001", "+254700000002"]
    )
    assert chunk_size([twilio, africastalking]) == 20 + 20
