"""What a report cell or sheet may hold: text Excel accepts, numbers it keeps exactly.

Rules:

- Text is always written as text, never as a formula: participant input such as
  ``=HYPERLINK(...)`` or ``+1 234`` never becomes a formula in a downloaded
  report (each writer marks its text cells as text; this module makes the text
  itself acceptable).
- Control characters Excel refuses are removed; text over 32,767 characters is
  cut (:func:`cell_text`).
- Excel keeps 15 significant digits: integers over 15 digits are written as text
  (Excel would round them): a number is kept as one only below ``MAX_EXCEL_INT``.
- A sheet title loses the characters Excel refuses in one (``[]:*?/\\``, made
  spaces) and surrounding quotes, is cut to 31 characters, and is ``Sheet1`` when
  nothing is left (:func:`safe_sheet_title`).
- A column is as wide as its header plus 4 characters, at least 12 and at most
  60 (:func:`column_width`).
"""

from __future__ import annotations

import re

# Excel keeps 15 significant digits: longer integers are written as text.
MAX_EXCEL_INT = 10**15
MAX_CELL_TEXT = 32767
ILLEGAL_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")


def cell_text(text: str) -> str:
    """``text`` without the characters Excel refuses, cut at 32,767 characters."""
    return ILLEGAL_XML_CHARS.sub("", text)[:MAX_CELL_TEXT]


def safe_sheet_title(title: str) -> str:
    """A sheet title Excel accepts."""
    title = _BAD_TITLE_CHARS.sub(" ", str(title)).strip().strip("'")[:31]
    return title or "Sheet1"


def column_width(header: str) -> int:
    """The width of a column headed ``header``, in characters."""
    return min(max(len(header) + 4, 12), 60)
