"""Which characters force an SMS into UCS-2, and the same text spelled in GSM-7 where it can be.

Rules:
- One character outside the GSM 03.38 alphabet and its extension table turns the
  whole SMS into UCS-2: 70 characters a segment instead of 160, so a message can
  cost twice as much (:mod:`messaging.lib.segments`). ``ucs2_characters`` lists
  those characters once each, in the order they appear.
- ``gsm7_spelling`` writes the usual look-alikes in GSM-7: curly quotes and
  apostrophes, dashes, the ellipsis, bullets, guillemets, the spaces other than
  the plain one, and letters whose accent GSM-7 lacks, by their base letter
  (á -> a, ê -> e, ç -> c, ő -> o); the accented letters GSM-7 has (é, è, à, ù,
  ì, ò, Ç, ñ, ü, ä, ö, å, ø, æ, ß, ...) stay. What has no GSM-7 spelling (an
  emoji, another script) stays as it is, so the text may still be UCS-2.
- Pure: no Flask, no database.
"""

from __future__ import annotations

import unicodedata

from messaging.lib.segments import is_gsm7

_LOOK_ALIKES = {
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",  # ‚
    "\u201b": "'",  # ‛
    "\u2032": "'",  # ′
    "\u00b4": "'",  # ´
    "`": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u2013": "-",  # –
    "\u2014": "-",  # —
    "\u2012": "-",
    "\u2212": "-",  # minus
    "\u2026": "...",  # …
    "\u2022": "-",  # •
    "\u00b7": "-",  # ·
    "\u00a0": " ",  # no-break space
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",  # zero-width space
    "\t": " ",
    "\u00b0": "o",  # °
    "\u2122": "TM",
    "\u00a9": "(c)",
}


def ucs2_characters(text: str) -> list[str]:
    """The characters of ``text`` that GSM-7 cannot send, once each, in order."""
    return list(dict.fromkeys(ch for ch in text if not is_gsm7(ch)))


def _spelled(ch: str) -> str:
    if is_gsm7(ch):
        return ch
    if ch in _LOOK_ALIKES:
        return _LOOK_ALIKES[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and all(is_gsm7(c) for c in base) else ch


def gsm7_spelling(text: str) -> str:
    """``text`` with each character GSM-7 lacks written with the look-alike it has, when one exists."""
    return "".join(_spelled(ch) for ch in text)
