"""Sending a request to a destination the outbound guard checked (``messaging.lib.outbound``).

Rules:
- The connection goes to the checked address (``Destination.pinned_url``), never to a
  second look-up of the name. The request carries the typed host in ``Host``; over https
  the TLS name sent (SNI) and the name the certificate must match are the typed host name
  (urllib3's ``server_hostname`` and ``assert_hostname``), so certificates are checked
  as strictly as without pinning.
- Redirects are never followed: the request goes straight to the adapter, so no redirect
  logic runs and a 3xx answer's body is read no more than any other. Proxies, ``.netrc``
  and CA settings from the environment are ignored (``trust_env`` off) and no cookie is
  kept from an answer (one session serves every project's destinations).
- One keep-alive session per process, re-made after a fork. Its connection pools are keyed
  by address, port and TLS name, so a kept-alive connection always goes to the address
  that was checked for this request.
- Errors are ``requests``' own (``Timeout``, ``ConnectionError``, ``SSLError``): the caller
  records them. The answer is streamed: the caller reads what it needs and closes it.
"""

from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter

from messaging.lib.outbound import Destination

POOLS = 20  # destinations kept alive at once, and connections per destination
SERVER_NAME = "outbound_server_name"  # set on the prepared request for the adapter


class PinnedAdapter(HTTPAdapter):
    """An adapter whose https pools present and check the typed host name, not the address."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        server_name = getattr(request, SERVER_NAME, None)
        if server_name and host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = server_name
            pool_kwargs["assert_hostname"] = server_name
        return host_params, pool_kwargs


_per_process: dict = {"pid": None, "session": None, "adapter": None}


def session() -> tuple[requests.Session, PinnedAdapter]:
    """The process's keep-alive session and its adapter (re-made after a fork)."""
    if _per_process["pid"] != os.getpid() or _per_process["session"] is None:
        http = requests.Session()
        http.trust_env = False
        adapter = PinnedAdapter(pool_connections=POOLS, pool_maxsize=POOLS, max_retries=0)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        _per_process.update(pid=os.getpid(), session=http, adapter=adapter)
    return _per_process["session"], _per_process["adapter"]


def post(
    destination: Destination,
    body: bytes,
    headers: dict,
    timeout: float,
    *,
    verify: bool | str = True,
) -> requests.Response:
    """POST ``body`` to the checked address of ``destination``; the answer is streamed
    (read it and close it). ``timeout`` applies to connecting and to each read."""
    return send("POST", destination, body, headers, timeout, verify=verify)


def send(  # noqa: PLR0913 - a request's parts
    method: str,
    destination: Destination,
    body: bytes | None,
    headers: dict,
    timeout: float,
    *,
    verify: bool | str = True,
) -> requests.Response:
    """Send a ``method`` request to the checked address of ``destination``; streamed as ``post``."""
    http, adapter = session()
    request = requests.Request(
        method, destination.pinned_url, data=body, headers={**headers, "Host": destination.host_header}
    )
    prepared = http.prepare_request(request)
    setattr(prepared, SERVER_NAME, destination.server_name)
    return adapter.send(
        prepared, stream=True, timeout=(timeout, timeout), verify=verify, cert=None, proxies={}
    )
