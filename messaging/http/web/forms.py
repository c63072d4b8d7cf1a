"""WTForms classes (Flask-WTF adds the CSRF token to each)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

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
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8)])
    role = SelectField("Role", choices=[SelectChoice(r, r.title()) for r in ROLES], default="manager")


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that post."""


class ProjectSettingsForm(FlaskForm):
    name = StringField("Project name", validators=[DataRequired(), Length(max=200)])
    default_country = StringField(
        "Default country (for national phone numbers)", validators=[DataRequired(), Length(min=2, max=2)]
    )
    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)])
    help_text = TextAreaField("Reply to HELP / INFO", validators=[DataRequired(), Length(max=300)])
