"""Outgoing e-mail: every e-mail the server sends is recorded, then sent over SMTP or printed.

Modules:
- ``mail``: ``send_mail`` records an e-mail in ``outbound_emails`` and sends it (or prints it without SMTP).
"""
