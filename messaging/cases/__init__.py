"""Cases and forms: CommCare's case model, changed only through these modules.

The API (``POST /api/v1/forms``), the web UI, the bulk case upload and SMS
surveys all change cases through this package, so its rules hold whichever
way a change arrives.

- ``blocks``: the shape of a form's case blocks (``parse_blocks``, ``Block``), 400 on anything malformed.
- ``ownership``: CommCare's case-sharing rules (who owns a new case, who may set an owner), case lists.
- ``updates``: changing a case from an ``update`` dict; phone numbers kept in E.164 beside the raw text.
- ``forms``: applying a form (``apply_form`` -> ``FormResult``), one transaction, locks, resubmissions.
- ``queries``: a case's history, a form's blocks, the case search, phone look-ups.
- ``serialize``: THE JSON of a case, a form, a form's result and a case block.
- ``bulk_upload``: the bulk case upload (an import handler of kind ``cases``).
- ``indexing``: ``indexed_on``, the per-row stamp in commit order CommCare's API pages by.
"""
