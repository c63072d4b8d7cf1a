"""Wire-level fakes of the outside services: Twilio's REST API, an HTTP receiver, an SMTP server."""
