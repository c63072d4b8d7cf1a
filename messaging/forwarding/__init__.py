"""messaging.forwarding.sender."""
