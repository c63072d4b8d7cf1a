"""Projects: the tenants. Every row of the other areas belongs to one project.

- ``setup``: creating a project with its first admin and API key.
- ``demo``: the demo project that ``make run`` seeds on first start.
- ``texts``: a project's own wordings of what the system says to participants, by language.
"""
