"""messaging.broadcasts.service."""
