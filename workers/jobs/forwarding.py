"""Data forwarding jobs: thin wrappers so the job paths stay stable."""

from messaging.forwarding import sender as forwarding


def forward_location(location_id: str) -> dict:
    return forwarding.forward_location(location_id)


def sweep_forwarding() -> dict:
    return forwarding.sweep()
