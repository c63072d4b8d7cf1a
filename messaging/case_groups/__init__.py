"""Case groups: named lists of cases, filled by identifier or from Excel (seed 003).

Views (web and API) call these functions; they raise a ``DomainError`` for a
refusal and leave the commit to the caller.

- ``groups``: create, rename, delete and list groups (names unique in any letter case).
- ``members``: a group's members: listing and searching them, removing a case, membership look-ups.
- ``phones``: phone-number identifiers to E.164, fast for the common spellings.
- ``resolve``: how an identifier (phone number, external ID, case ID) finds a case, set-based.
- ``results``: the result of adding one identifier, and their labels.
- ``adding``: adding by identifier: plan a batch (reads only), then insert the members.
- ``upload``: the Excel import handler (``case_identifier`` column) and its example file.
- ``serialize``: THE JSON of a group, a member (the case JSON plus ``added_at``) and a candidate.
"""
