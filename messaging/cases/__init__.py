"""messaging.cases.forms."""
