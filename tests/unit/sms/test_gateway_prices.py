"""A gateway's price string read as exact positive millionths."""

from messaging.sms.gateway_prices import price_micros


def test_prices_are_kept_positive_and_exact():
    assert price_micros("-0.00750") == 7500
    assert price_micros("0.0075") == 7500
    assert price_micros("-1.2") == 1_200_000
    assert price_micros(None) is None
    assert price_micros("n/a") is None
    assert price_micros("NaN") is None
