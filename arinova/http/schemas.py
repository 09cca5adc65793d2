"""JSON Schemas of the shapes the REST areas answer with (contract rest.md §2 and §3),
for the routes' docs (``arinova.http.apidoc``)."""

from __future__ import annotations

from typing import Final

from arinova.http.apidoc import BOOL, INT, JSON, STR, TIME, UUID, arr, null, obj

NULL_STR: Final = null(STR)
NULL_TIME: Final = null(TIME)

QUICK_REPLY: Final = obj({"label": STR, "message": STR})

AGENT: Final = obj(
    {
        "id": UUID,
        "name": STR,
        "description": NULL_STR,
        "avatarUrl": NULL_STR,
        "a2aEndpoint": NULL_STR,
        "secretToken": NULL_STR,
        "ownerId": STR,
        "isPublic": BOOL,
        "category": NULL_STR,
        "usageCount": INT,
        "systemPrompt": NULL_STR,
        "welcomeMessage": NULL_STR,
        "quickReplies": null(arr(QUICK_REPLY)),
        "notificationsEnabled": BOOL,
        "createdAt": TIME,
        "updatedAt": TIME,
    }
)

_CONVERSATION_FIELDS: Final[JSON] = {
    "id": UUID,
    "title": NULL_STR,
    "type": {"enum": ["direct", "group"]},
    "userId": STR,
    "agentId": null(UUID),
    "pinnedAt": NULL_TIME,
    "createdAt": TIME,
    "updatedAt": TIME,
}
CONVERSATION: Final = obj(_CONVERSATION_FIELDS)

_MEMBER_FIELDS: Final[JSON] = {
    "id": UUID,
    "conversationId": UUID,
    "agentId": UUID,
    "addedAt": TIME,
}
MEMBER: Final = obj(_MEMBER_FIELDS)
MEMBER_VIEW: Final = obj(
    {
        **_MEMBER_FIELDS,
        "agentName": STR,
        "agentDescription": NULL_STR,
        "agentAvatarUrl": NULL_STR,
    }
)
GROUP: Final = obj({**_CONVERSATION_FIELDS, "members": arr(MEMBER)})

_MESSAGE_FIELDS: Final[JSON] = {
    "id": UUID,
    "conversationId": UUID,
    "seq": INT,
    "role": {"enum": ["user", "agent"]},
    "content": STR,
    "status": {"enum": ["pending", "streaming", "completed", "cancelled", "error"]},
    "createdAt": TIME,
    "updatedAt": TIME,
}
MESSAGE: Final = obj(_MESSAGE_FIELDS)

CONVERSATION_ITEM: Final = obj(
    {
        **_CONVERSATION_FIELDS,
        "agentName": STR,
        "agentDescription": NULL_STR,
        "agentAvatarUrl": NULL_STR,
        "lastMessage": null(MESSAGE),
    }
)

ATTACHMENT: Final = obj(
    {
        "id": UUID,
        "messageId": UUID,
        "fileName": STR,
        "fileType": STR,
        "fileSize": INT,
        "url": STR,
        "createdAt": TIME,
    }
)
MESSAGE_WITH_ATTACHMENTS: Final = obj({**_MESSAGE_FIELDS, "attachments": arr(ATTACHMENT)})

MESSAGE_PAGE: Final = obj(
    {"messages": arr(MESSAGE_WITH_ATTACHMENTS), "hasMore": BOOL},
    {"hasMoreUp": BOOL, "hasMoreDown": BOOL, "nextCursor": null(UUID)},
)

SEARCH_HIT: Final = obj(
    {
        "messageId": UUID,
        "conversationId": UUID,
        "content": STR,
        "role": {"enum": ["user", "agent"]},
        "createdAt": TIME,
        "conversationTitle": NULL_STR,
        "agentId": null(UUID),
        "agentName": NULL_STR,
        "agentAvatarUrl": NULL_STR,
    }
)
SEARCH: Final = obj({"results": arr(SEARCH_HIT), "total": INT})

CONVERSATION_STATUS: Final = obj(
    {
        "conversation": obj(
            {
                "id": UUID,
                "title": NULL_STR,
                "type": {"enum": ["direct", "group"]},
                "createdAt": TIME,
                "messageCount": INT,
            }
        ),
        "agent": null(
            obj(
                {
                    "id": UUID,
                    "name": STR,
                    "a2aEndpoint": NULL_STR,
                    "status": {"enum": ["online", "offline", "error"]},
                    "latencyMs": null(INT),
                }
            )
        ),
    }
)

_HEALTH_FIELDS: Final[JSON] = {
    "status": {"enum": ["online", "offline", "error"]},
    "latencyMs": null(INT),
    "checkedAt": TIME,
}
AGENT_HEALTH: Final = obj(_HEALTH_FIELDS, {"mode": {"const": "websocket"}})
AGENTS_HEALTH: Final = arr(
    obj({"agentId": UUID, **_HEALTH_FIELDS}, {"mode": {"const": "websocket"}})
)

SKILLS: Final = obj({"skills": arr(obj({"id": STR, "name": STR, "description": STR}))})
AGENT_STATS: Final = obj({"totalMessages": INT, "totalConversations": INT, "lastActive": NULL_TIME})

REACTION: Final = obj(
    {"messageId": UUID, "userId": STR, "emoji": STR}, {"id": UUID, "createdAt": TIME}
)
REACTION_COUNTS: Final = arr(obj({"emoji": STR, "count": INT, "userReacted": BOOL}))

PREFERENCES: Final = obj(
    {
        "globalEnabled": BOOL,
        "messageEnabled": BOOL,
        "playgroundInviteEnabled": BOOL,
        "playgroundTurnEnabled": BOOL,
        "playgroundResultEnabled": BOOL,
        "quietHoursStart": NULL_STR,
        "quietHoursEnd": NULL_STR,
    }
)

OK_TRUE: Final = obj({"ok": {"const": True}})

SERVICE_HEALTH: Final = obj(
    {
        "status": {"enum": ["ok", "degraded"]},
        "db": {"enum": ["ok", "error"]},
        "redis": {"enum": ["ok", "error"]},
        "timestamp": TIME,
    }
)

SANDBOX_RESULT: Final = obj({"output": STR, "error": NULL_STR, "executionTimeMs": INT})

# -- Better Auth (rest.md §3.2) ------------------------------------------------------------

USER: Final = obj(
    {
        "id": STR,
        "name": STR,
        "email": STR,
        "emailVerified": BOOL,
        "image": NULL_STR,
        "createdAt": TIME,
        "updatedAt": TIME,
    }
)
SESSION: Final = obj(
    {
        "id": STR,
        "expiresAt": TIME,
        "token": STR,
        "createdAt": TIME,
        "updatedAt": TIME,
        "ipAddress": NULL_STR,
        "userAgent": NULL_STR,
        "userId": STR,
    }
)
SIGNED_IN: Final = obj({"token": STR, "user": USER}, {"redirect": BOOL, "url": STR})
STATUS_TRUE: Final = obj({"status": BOOL})
