"""messaging.people.directory."""
