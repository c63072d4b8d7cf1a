"""All models, imported here so that Alembic and the app see every table.

Later areas add their own module and import it below.
"""

from messaging.models.base import TenantScoped, new_id  # noqa: F401
from messaging.models.broadcasts import Broadcast, BroadcastFiring, BroadcastRecipient  # noqa: F401, E402
from messaging.models.case_groups import CaseGroup, CaseGroupMember  # noqa: F401, E402
from messaging.models.cases import CaseTransaction  # noqa: F401
from messaging.models.core import (  # noqa: F401
    ROLES,
    ApiToken,
    Application,
    Case,
    Form,
    GroupMembership,
    MobileWorker,
    Project,
    UserGroup,
    WebUser,
    hash_token,
)
from messaging.models.forwarding import (  # noqa: F401, E402
    ForwardAttempt,
    ForwardLocation,
    ForwardRecord,
    ForwardRecordKey,
    OutboundEmail,
)
from messaging.models.imports import Import, ImportBatch, ImportFile  # noqa: F401, E402
from messaging.models.messaging import GatewayConfig, Message, OptOut  # noqa: F401, E402
from messaging.models.surveys import (  # noqa: F401, E402
    InboundMessage,
    InboundSettings,
    Keyword,
    Survey,
    SurveySession,
)
