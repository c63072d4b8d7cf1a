"""Per-recipient SMS text: placeholders and translations.

Placeholder syntax: ``{namespace.field}``, spaces inside the braces allowed
(``{ case.name }``). Namespaces:

- ``case``: ``name``, ``external_id``, ``phone_number`` (and any other
  top-level field given), else a key of the case's ``properties`` dict.
  A top-level field wins over a property with the same name.
- ``user``: fields of the mobile-worker recipient, e.g. ``{user.username}``.

A well-formed placeholder with another namespace (``{foo.bar}``) is looked up
like the others, so it renders empty and is reported in ``missing``.

Context shape: ``{"case": {"name": ..., "properties": {...}}, "user": {"username": ...}}``;
each value may also be an object with those attributes.

Rendering never raises. A placeholder whose value is absent, ``None`` or an
empty string renders as ``""`` and is reported in ``missing`` (the recipient
sees a blank either way, so a preview should warn). ``{{`` and ``}}`` are
literal braces. Anything else in braces (``{name}``, ``{5}``, ``{case}``) and a
lone ``{`` or ``}`` is left as written; :func:`validate_template` reports it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["NAMESPACES", "RenderResult", "choose_text", "placeholders", "render", "validate_template"]

NAMESPACES = frozenset({"case", "user"})

# One token at a time: an escaped brace, a placeholder, or any other brace.
_TOKEN = re.compile(
    r"(?P<open>\{\{)|(?P<close>\}\})"
    r"|\{\s*(?P<name>[A-Za-z_]\w*\.[\w-]+)\s*\}"
    r"|(?P<brace>[{}])"
)
_QUOTE_LEN = 30  # how much of an unclosed "{..." to quote in a problem


@dataclass(frozen=True)
class RenderResult:
    """Rendered text and the placeholders that had no value."""

    text: str
    missing: set[str] = field(default_factory=set)


def render(template: str, context: Mapping[str, Any]) -> RenderResult:
    """Fill ``template`` from ``context``; missing values render empty and are listed, never raises."""
    out: list[str] = []
    missing: set[str] = set()
    for literal, name in _parts(template):
        out.append(literal)
        if name is not None:
            value = _lookup(context, name)
            if value == "":
                missing.add(name)
            out.append(value)
    return RenderResult("".join(out), missing)


@functools.lru_cache(maxsize=256)
def _parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """``template`` parsed once: (literal text, placeholder name or None) pairs, in order (a
    fan-out renders one template for thousands of recipients)."""
    parts: list[tuple[str, str | None]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        literal.append(template[pos : match.start()])
        pos = match.end()
        if match["open"]:
            literal.append("{")
        elif match["close"]:
            literal.append("}")
        elif match["name"]:
            parts.append(("".join(literal), match["name"]))
            literal = []
        else:
            literal.append(match["brace"])
    literal.append(template[pos:])
    parts.append(("".join(literal), None))
    return tuple(parts)


def placeholders(template: str) -> set[str]:
    """Names of the well-formed placeholders in ``template`` (``{"case.name", ...}``)."""
    return {m["name"] for m in _TOKEN.finditer(template) if m["name"]}


def validate_template(template: str) -> list[str]:
    """Problems a sender should fix (unclosed or stray braces, unknown namespaces); empty when fine."""
    problems: list[str] = []
    explained: set[int] = set()  # positions of "}" already covered by a "not a placeholder" problem
    for match in _TOKEN.finditer(template):
        name, brace = match["name"], match["brace"]
        if name:
            if name.split(".", 1)[0] not in NAMESPACES:
                problems.append(f"Unknown placeholder {{{name}}}: use {{case.…}} or {{user.…}}.")
        elif brace == "{":
            close = template.find("}", match.end())
            opener = template.find("{", match.end())
            if close == -1 or (opener != -1 and opener < close):
                snippet = template[match.start() : match.start() + _QUOTE_LEN]
                problems.append(
                    f"Unclosed brace at '{snippet}': add '}}' or write '{{{{' for a literal brace."
                )
            else:
                explained.add(close)
                problems.append(
                    f"'{template[match.start() : close + 1]}' is not a placeholder: write {{case.name}}, "
                    "{case.<property>} or {user.username}, or '{{' and '}}' for literal braces."
                )
        elif brace == "}" and match.start() not in explained:
            problems.append("Stray '}': write '}}' for a literal brace.")
    return problems


def choose_text(
    translations: Mapping[str, str], default_lang: str, recipient_lang: str | None
) -> tuple[str, str]:
    """``(lang, text)`` for a recipient: exact language, then base (``pt-BR`` -> ``pt``), then default.

    Language codes compare case-insensitively with ``_`` read as ``-``; blank
    translations do not count. ``ValueError`` when the default has no text.
    """
    by_code = {_lang_key(lang): lang for lang, text in translations.items() if text and text.strip()}
    candidates = []
    if recipient_lang and recipient_lang.strip():
        wanted = _lang_key(recipient_lang)
        candidates += [wanted, wanted.split("-", 1)[0]]
    candidates.append(_lang_key(default_lang))
    for code in candidates:
        if code in by_code:
            lang = by_code[code]
            return lang, translations[lang]
    raise ValueError(f"no text for the default language {default_lang!r}")


# --- internals ---------------------------------------------------------------


def _lookup(context: Mapping[str, Any], name: str) -> str:
    namespace, key = name.split(".", 1)
    source = _get(context, namespace)
    if source is None:
        return ""
    value = _get(source, key)
    if value is None and namespace == "case":
        properties = _get(source, "properties")
        value = _get(properties, key) if properties is not None else None
    return _as_text(value)


def _get(source: Any, key: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(key)
    if key.startswith("_"):  # never reach into private attributes of an object
        return None
    return getattr(source, key, None)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    # A number read back from JSON or Excel as 12.0 is shown as the 12 the user typed.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(_as_text(v) for v in value if v is not None)
    try:
        return str(value)
    except Exception:  # an odd object must not break a whole broadcast
        return ""


def _lang_key(lang: str) -> str:
    return lang.strip().replace("_", "-").lower()
