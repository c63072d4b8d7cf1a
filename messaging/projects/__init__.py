"""messaging.projects.setup."""
