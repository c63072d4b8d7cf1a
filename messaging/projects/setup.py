"""A project's setup: creating it with its first admin, and the settings an admin changes later.

- The slug is 2-63 lowercase letters, digits or dashes, starting with a letter
  or digit (400 ``invalid_slug``), unique (409 ``duplicate_slug``).
- The admin's e-mail follows the one rule for addresses (``messaging.lib.emails``,
  the same as at login; 400 ``invalid_email`` with the reason), is stored in
  lower case and must be new across all projects (409 ``duplicate_email``).
- The admin password follows the one length rule of passwords (at least 8
  characters, ``messaging.accounts.logins``; 400 ``weak_password``).
- The project's name defaults to its slug in title case; its default country
  (for national phone spellings) is stored in upper case.
- The admin gets a one-time API key (only its hash is stored).
- Changing the settings: the default country must be a region phone numbers
  know (400 ``invalid_country``) and the time zone an IANA name (400
  ``invalid_timezone``); a refused change changes nothing. Values are trimmed.
"""

import re

import phonenumbers
from sqlalchemy import func, select

from messaging.accounts.logins import check_password_length
from messaging.errors import Conflict, Invalid
from messaging.extensions import db
from messaging.lib.emails import InvalidEmail, normalize_email
from messaging.lib.localtime import get_zone
from messaging.models import ApiToken, Project, WebUser

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def create_project(
    slug: str,
    admin_email: str,
    admin_password: str,
    name: str | None = None,
    default_country: str = "KE",
    timezone: str = "UTC",
) -> tuple[Project, WebUser, str]:
    """Create a project with an admin; returns (project, admin, one-time API key)."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise Invalid("invalid_slug", "The slug must be 2-63 lowercase letters, digits or dashes.")
    if db.session.execute(select(Project.id).where(Project.slug == slug)).first():
        raise Conflict("duplicate_slug", f"A project '{slug}' already exists.")
    try:
        email = normalize_email(admin_email)
    except InvalidEmail as exc:
        raise Invalid("invalid_email", f"The admin e-mail is not valid: {exc}", field="admin_email") from None
    if db.session.execute(
        select(WebUser.id).where(func.lower(WebUser.email) == email).execution_options(all_projects=True)
    ).first():
        raise Conflict("duplicate_email", f"{email} already has an account.")
    check_password_length(admin_password, "The admin password", field=None)
    project = Project(
        slug=slug,
        name=name or slug.replace("-", " ").title(),
        default_country=default_country.upper(),
        timezone=timezone,
    )
    db.session.add(project)
    db.session.flush()
    admin = WebUser(project_id=project.id, email=email, role="admin", name="Admin")
    admin.set_password(admin_password)
    db.session.add(admin)
    db.session.flush()
    _token, key = ApiToken.issue(admin, "created with the project")
    db.session.flush()
    return project, admin, key


def change_settings(
    project: Project, *, name: str, default_country: str, timezone: str, help_text: str
) -> None:
    """Set the project's name, default country, time zone and HELP reply; a bad country or time zone
    raises ``Invalid`` before anything changes. The caller commits."""
    country = default_country.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid(
            "invalid_country",
            f"'{country}' is not a country code phone numbers know (use e.g. KE, UG, IN, US).",
            field="default_country",
        )
    zone = timezone.strip()
    try:
        get_zone(zone)
    except ValueError:
        raise Invalid(
            "invalid_timezone",
            f"'{zone}' is not a time zone (use e.g. Africa/Nairobi, Asia/Kolkata, UTC).",
            field="timezone",
        ) from None
    project.name = name.strip()
    project.default_country = country
    project.timezone = zone
    project.help_text = help_text.strip()
