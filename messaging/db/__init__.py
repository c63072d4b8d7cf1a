"""The database seams every domain builds on.

- ``dialect``: every difference between SQLite and PostgreSQL, behind functions named by
  what they mean (``begin_write``, ``in_values``, ``update_each``, ``lock_in_order``, ...).
- ``after_commit``: the one way to run work (enqueueing jobs) after the caller's commit.
- ``tenancy``: project scope by construction: every ORM query of a project's table is
  filtered to the current project, and new rows are stamped with it.
"""
