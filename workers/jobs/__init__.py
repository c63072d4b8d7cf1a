"""Job modules. Importing this package registers every periodic task."""

from workers import periodic

periodic.register("heartbeat", 60, "workers.jobs.maintenance.heartbeat", "low")
periodic.register("sweep-imports", 60, "workers.jobs.imports.sweep_imports", "low")
periodic.register("sms-sweep", 15, "workers.jobs.sms.sweep", "high")
periodic.register("sweep-forwarding", 60, "workers.jobs.forwarding.sweep_forwarding", "low")
periodic.register("survey-tick", 30, "workers.jobs.surveys.tick", "high")
periodic.register("inbound-sweep", 30, "workers.jobs.inbound.sweep", "high")
periodic.register("broadcast-tick", 10, "workers.jobs.broadcasts.tick", "high")
