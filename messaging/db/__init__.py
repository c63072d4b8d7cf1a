"""messaging.db."""
