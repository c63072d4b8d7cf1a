"""messaging.http."""
