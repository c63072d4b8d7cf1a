"""Clean up inbound SMS text before reading it as a command or an answer."""

from __future__ import annotations

import re

__all__ = ["clean_text"]

# Zero-width and direction marks that phones and copy-paste slip into messages.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff",
    ),
    None,
)
_SPACE_RUN = re.compile(r"[^\S\n]+")  # any Unicode space except newline (NBSP included)


def clean_text(text: str | None) -> str:
    """``text`` without invisible marks, with Unicode spaces as plain spaces, stripped; ``""`` for None."""
    if not text:
        return ""
    return _SPACE_RUN.sub(" ", text.translate(_INVISIBLE)).strip()
