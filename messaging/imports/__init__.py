"""messaging.imports.runner."""
