"""WTForms classes (Flask-WTF adds the CSRF token to each)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from messaging.accounts.logins import MIN_PASSWORD_LENGTH
from messaging.lib.emails import InvalidEmail, normalize_email
from messaging.models import ROLES


def valid_email(form, field) -> None:
    """The one rule for e-mail addresses (``messaging.lib.emails``), as a WTForms validator."""
    try:
        normalize_email(field.data)
    except InvalidEmail as exc:
        raise ValidationError(str(exc)) from None


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), valid_email])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me logged in")


class ApiTokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])


class WebUserForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), valid_email])
    name = StringField("Name", validators=[Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)])
    role = SelectField("Role", choices=[SelectChoice(r, r.title()) for r in ROLES], default="manager")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                message=f"The new password must have at least {MIN_PASSWORD_LENGTH} characters.",
            ),
        ],
    )
    confirm_password = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("new_password", message="The two new passwords differ.")],
    )


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""


class ProjectSettingsForm(FlaskForm):
    name = StringField("Project name", validators=[DataRequired(), Length(max=200)])
    default_country = StringField(
        "Default country (for national phone numbers)", validators=[DataRequired(), Length(min=2, max=2)]
    )
    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)])
    help_text = TextAreaField("Reply to HELP / INFO", validators=[DataRequired(), Length(max=300)])
