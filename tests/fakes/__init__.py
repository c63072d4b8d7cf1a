"""Wire-level fakes of the outside services: the SMS providers' APIs (what they share is in
fake_server.py), an HTTP receiver, an SMTP server."""
