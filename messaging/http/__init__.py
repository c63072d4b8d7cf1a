"""HTTP: the web UI, the JSON API and the webhooks, thin over the domains.

A view validates the request, calls one domain function, commits and answers;
slow work is enqueued by the domain (after the commit), never done in a request.

- ``api/``: JSON under ``/api/v1`` (one ``route`` declaration per view feeds the OpenAPI document).
- ``web/``: the server-rendered pages.
- ``webhooks``: the gateways' inbound messages and delivery reports (signatures or secrets checked).
- ``health``: ``/healthz``, ``/healthz/workers``.
- ``errors``: domain refusals (``messaging.errors``) to HTTP statuses.
- ``lookup``: ``get_or_404``, one row of the current project or a 404.
"""
