"""messaging.lib."""
