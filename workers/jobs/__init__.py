"""Job modules. Importing this package registers every periodic task."""

from workers import periodic

periodic.register("heartbeat", 60, "workers.jobs.maintenance.heartbeat", "low")
periodic.register("sweep-imports", 60, "workers.jobs.imports.sweep_imports", "low")
periodic.register("sweep-forwarding", 60, "workers.jobs.forwarding.sweep_forwarding", "low")
