"""messaging.case_groups.membership."""
