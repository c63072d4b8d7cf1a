"""What an e-mail address may be: one rule, the same when a project is created, a user is added and at login.

Rules:
- The syntax is email-validator's (no spaces, one @, a valid domain name);
  no DNS look-up is made (``check_deliverability=False``).
- Domains that self-hosted teams use on their own networks are allowed:
  special-use names such as ``.test``, ``.local``, ``.localhost``,
  ``.internal`` and dotless hosts (``admin@clinic``). email-validator refuses
  some of these by default because they cannot receive mail from the
  internet; a server on a clinic's network can still log its users in.
- Addresses are compared without regard to case: the normalized form is the
  trimmed address in lower case.
"""

from __future__ import annotations

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_LENGTH = 254


class InvalidEmail(ValueError):
    """The text is not an e-mail address; the message says why, for a person."""


def normalize_email(text: str | None) -> str:
    """The address in its stored form (trimmed, lower case), or ``InvalidEmail``."""
    address = (text or "").strip()
    if not address:
        raise InvalidEmail("Enter an e-mail address.")
    if len(address) > MAX_LENGTH:
        raise InvalidEmail(f"An e-mail address has at most {MAX_LENGTH} characters.")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("An e-mail address looks like name@example.org.")
    try:
        # A special-use name is checked as if it ended in .test, which email-validator
        # accepts with test_environment: the rest of its syntax rules still apply.
        validate_email(
            f"{local}@{_as_test_domain(domain)}",
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return address.lower()


def is_valid_email(text: str | None) -> bool:
    try:
        normalize_email(text)
    except InvalidEmail:
        return False
    return True


def _as_test_domain(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    for size in range(len(labels), 0, -1):
        if ".".join(labels[-size:]) in SPECIAL_USE_DOMAIN_NAMES:
            return ".".join([*labels[:-size], "test"])
    return domain
