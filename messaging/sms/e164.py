"""The one shape of a phone number this package sends to or from.

Rules:
- A number is E.164: ``+``, a first digit other than 0, then 6 to 14 more
  digits, nothing else (no spaces). Recipients that do not match are never
  sent to (their row fails ``invalid_number``); sender numbers that do not
  match are refused when the gateway is saved.
"""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
