"""messaging.notifications."""
