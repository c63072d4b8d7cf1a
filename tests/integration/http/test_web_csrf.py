"""Every web POST is checked for its CSRF token before its view runs (``CSRFProtect`` on the whole
app), so the views need no check of their own: a POST without the token is a 400 and changes nothing."""

import pytest

from tests.integration.accounts.helpers import is_logged_in


@pytest.mark.parametrize(
    "path",
    [
        "/logout",
        "/settings/tokens/1/revoke",
        "/settings/users/1/deactivate",
        "/settings/gateway",
        "/messages/send",
    ],
)
def test_a_post_without_its_csrf_token_is_refused_before_the_view(app, project, web, path):
    from messaging.extensions import db
    from messaging.models import ApiToken, Message, WebUser

    data = {"kind": "console", "phone": "+254712345678", "text": "hello"}
    response = web.client.post(path, data=data)
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert is_logged_in(web.client)
    with project.scope():
        assert db.session.query(ApiToken).filter(ApiToken.revoked_at.is_not(None)).count() == 0
        assert all(user.is_active for user in db.session.query(WebUser))
        assert db.session.query(Message).count() == 0
