"""CommCare HQ's integration surface, spoken by this server: its API's JSON and lists, and its
XForm receiver, so CommCare's tools (commcare-export, OpenFn's adaptor) work unchanged.

- ``receiver``: an XForm submission parsed safely and applied as every form is.
- ``serialize``: CommCare's JSON of cases, forms, mobile workers, groups and messaging events.
- ``listing``: the resources' filters, ``order_by`` and offset pages in tastypie's envelope.

The stamps the lists page by live with the cases (``messaging.cases.indexing``).
"""
