"""People: the mobile workers who submit forms, their user groups (case sharing) and applications.

Views (web and API) call these functions; they check the business rules, raise a
``DomainError`` for a refusal and leave the commit to the caller.

- ``workers``: creating a mobile worker (unique username, phone number normalised).
- ``groups``: user groups, their members and case-sharing switch; a user's case-sharing groups.
- ``applications``: creating and changing an application (its case-sharing switch).
- ``serialize``: THE JSON of a mobile worker, a user group and an application.
"""
