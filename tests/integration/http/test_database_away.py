"""While the database is away, the API and the pages answer 503 with Retry-After (not a 500), and
the page is drawn without the database."""

from tests.conftest import app_test_config, csrf_token_from, free_port


def app_without_its_database():
    from messaging import create_app

    gone = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"  # nothing listens there
    return create_app({**app_test_config(), "SQLALCHEMY_DATABASE_URI": gone})


def test_the_api_answers_503_database_unavailable_with_retry_after(app):
    client = app_without_its_database().test_client()
    answer = client.get("/api/v1/cases", headers={"Authorization": "Token not-checked-yet"})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "database_unavailable"
    assert answer.headers["Retry-After"] == "5"


def test_a_page_answers_503_and_still_renders(app):
    client = app_without_its_database().test_client()
    login_page = client.get("/login")
    assert login_page.status_code == 200
    answer = client.post(
        "/login",
        data={
            "email": "someone@example.org",
            "password": "correct horse battery",
            "csrf_token": csrf_token_from(login_page.get_data(as_text=True)),
        },
    )
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "The database is not answering" in answer.get_data(as_text=True)
