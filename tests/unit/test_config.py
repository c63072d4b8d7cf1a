import pytest

from messaging.config import ConfigError, from_environment, normalize_database_url


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        from_environment()


def test_development_defaults(monkeypatch):
    for name in [
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "SMS_GATEWAY",
        "PUBLIC_BASE_URL",
        "PASSWORD_HASH_METHOD",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "development")
    config = from_environment()
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["SQLALCHEMY_DATABASE_URI"].endswith("instance/messaging.sqlite3")
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert config["SMS_GATEWAY"] == "console"
    assert config["SECRET_KEY"]
    assert config["PASSWORD_HASH_METHOD"] == "scrypt"  # only the tests' own config lowers it


def test_bad_number_in_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("IMPORT_MAX_ROWS", "lots")
    with pytest.raises(ConfigError, match="IMPORT_MAX_ROWS"):
        from_environment()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_normalised(given, expected):
    assert normalize_database_url(given) == expected
