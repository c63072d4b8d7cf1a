"""All models, a module per area, imported here so that Alembic and the app see every table.

- ``base``: the tenant mixin (``TenantScoped``), public ids, BigInteger keys.
- ``projects``: projects, web users and their roles, API tokens.
- ``web_sessions``: web users' login sessions (what logout and deactivation end).
- ``people``: mobile workers, user groups (case sharing), applications.
- ``cases``: cases, forms and each case's history (case transactions).
- ``alerts``: conditional alert rules, each case's occurrences and match state.
- ``case_groups``, ``sms`` (messages, opt-outs, gateway settings), ``broadcasts``,
  ``surveys`` (surveys, sessions, keywords, inbound messages), ``forwarding``, ``imports``.

Each model's statuses, kinds and reasons are declared beside it (a ``StrEnum``
and the tuple of its values).
"""

from messaging.models.alerts import AlertCaseState, AlertOccurrence, AlertRule  # noqa: F401, E402
from messaging.models.base import TenantScoped, new_id  # noqa: F401
from messaging.models.broadcasts import Broadcast, BroadcastFiring, BroadcastRecipient  # noqa: F401, E402
from messaging.models.case_groups import CaseGroup, CaseGroupMember  # noqa: F401, E402
from messaging.models.cases import (  # noqa: F401
    Case,
    CaseTransaction,  # noqa: F401
    Form,
    IndexStamp,
)
from messaging.models.forwarding import (  # noqa: F401, E402
    ForwardAttempt,
    ForwardLocation,
    ForwardRecord,
    ForwardRecordKey,
    OutboundEmail,
)
from messaging.models.imports import Import, ImportBatch, ImportFile  # noqa: F401, E402
from messaging.models.people import Application, GroupMembership, MobileWorker, UserGroup  # noqa: F401
from messaging.models.projects import ROLES, ApiToken, Project, WebUser, hash_token  # noqa: F401
from messaging.models.sms import (  # noqa: F401, E402
    CannedReply,
    ConsentEvent,
    DailySendCount,
    GatewayConfig,
    Message,
    MessageDayCount,
    OptOut,
    SmsPrice,
)
from messaging.models.surveys import (  # noqa: F401, E402
    InboundMessage,
    InboundSettings,
    Keyword,
    ProjectText,
    Survey,
    SurveySession,
)
from messaging.models.web_sessions import WebSession  # noqa: F401, E402
