"""The result of adding one identifier to a case group (per import row, and in the API answer).

- ``added``: the case was added (``would_add`` in a dry run: it would be).
- ``already_member``: the case is in the group already (even if it is closed since).
- ``not_found``: no case has this phone number, external ID or case ID.
- ``ambiguous``: several cases match; nothing is added and the candidates are listed.
- ``invalid``: blank, too long, or a date or true/false cell: not an identifier.
- ``closed``: the case is closed, so it is not added.
- ``deleted``: only a deleted case matches.
- ``duplicate_in_file``: an import row that means the same case as (or repeats
  the unresolved identifier of) an earlier row; it is not added twice.
- ``error``: the row could not be processed (or the group was deleted during the import).
"""

ADDED = "added"
WOULD_ADD = "would_add"
ALREADY_MEMBER = "already_member"
NOT_FOUND = "not_found"
AMBIGUOUS = "ambiguous"
INVALID = "invalid"
CLOSED = "closed"
DELETED = "deleted"
DUPLICATE_IN_FILE = "duplicate_in_file"
ERROR = "error"
# What an identifier resolved to when it found exactly one live case.
MATCH = "match"

RESULT_LABELS = {
    ADDED: "Added",
    WOULD_ADD: "Would be added",
    ALREADY_MEMBER: "Already in this group",
    NOT_FOUND: "Not found",
    AMBIGUOUS: "Several cases match",
    INVALID: "Not an identifier",
    CLOSED: "Case closed",
    DELETED: "Case deleted",
    DUPLICATE_IN_FILE: "Repeated in the file",
    ERROR: "Error",
}
