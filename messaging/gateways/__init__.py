"""Gateways: every SMS provider a project can send through, behind one interface.

A project has one or more gateways; each message takes the one whose number
prefix matches it best, else the default. Adding a provider is one module
here (a ``base.Gateway`` subclass), one line in ``registry``, and its fake in
``tests/fakes``. Sending itself (claims, pacing, outcomes, the sweep) is
``messaging.sms``.

- ``base``: the interface: sending, asking about a message, webhooks; results and errors.
- ``registry``: every kind and its class.
- ``console``, ``twilio``, ``africastalking``, ``vonage``, ``infobip``, ``telerivet``,
  ``http_generic``: the providers.
- ``http_client``: kept-alive sessions and the timeout of the providers spoken to with plain requests.
- ``settings``: a project's gateways, validated and saved (secrets encrypted), and the objects they make.
- ``routing``: which gateway a message takes (pinned, longest prefix, default).
- ``receiving``: the providers' webhooks: who may call them and what they change.
- ``journal``: what a gateway that cannot be asked answered, until it is recorded.
- ``recent_errors``: each gateway's last errors, for its page.
- ``testing``: a gateway page's test send, and its errors in plain words.
- ``serialize``: THE JSON of a gateway and of a gateway kind.
"""
