"""Uploads area (contract rest.md §3.9, §3.3 avatar, §3.13; behaviours.md §2).

* ``POST /api/conversations/:conversationId/upload``: a chat file (and caption)
  becomes a user message with one attachment; the agent then replies (direct
  conversations only).
* ``GET /api/attachments/:id``: one attachment of the caller's.
* ``POST /api/agents/:id/avatar``: an agent's avatar image.
* ``GET|HEAD /uploads/*``: files stored on the local disk.

Fixed quirks: the whole form is read before acting (Q28); the sniffed type must be the
declared one (Q27); avatars must be PNG, JPEG, GIF or WebP by content and get the
extension of that type (Q29); the caption goes through the chat sanitiser (Q25); the
rows are written in one transaction with an atomically allocated ``seq`` (Q06) and the
stored file is removed when they cannot be (Q40); a too-long file name is refused
before anything is stored.

Bounded: a file streams to a spool file as it arrives (``multipart.spooled_form``), so
an upload holds a few hundred KiB of memory whatever its size, and each process reads
at most ``MAX_CONCURRENT_UPLOADS`` uploads at once, ``MAX_CONCURRENT_UPLOADS_PER_USER``
of one user (``upload_slots``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final

from blacksheep import Request, Response

from arinova.db.messages_seq import lock_conversation
from arinova.db.queries import agents as agent_queries
from arinova.db.queries.uploads import (
    INSERT_MESSAGE_WITH_ATTACHMENT,
    OWN_ATTACHMENT,
    OWN_CONVERSATION,
    SET_AVATAR,
)
from arinova.errors import ApiError
from arinova.http import schemas as s
from arinova.http.agents_common import agent_id_of, agent_not_found
from arinova.http.apidoc import STR, Doc, Raw, Reply, obj
from arinova.http.common import raw_url
from arinova.http.conversations import conversation_id_of, conversation_not_found
from arinova.http.multipart import spooled_form
from arinova.http.responses import json_response
from arinova.http.router import ArinovaRouter
from arinova.http.shapes import attachment_json, message_json
from arinova.http.upload_slots import UploadSlots
from arinova.http.validate import parse_uuid
from arinova.sanitize import sanitize_content
from arinova.state import AppState
from arinova.storage import KeyExists, Storage, StorageError
from arinova.storage.mime import type_for_name
from arinova.storage.sniff import detect_file_type
from arinova.storage.static import serve_upload

#: declared types a chat upload may have (compared with the normalised part type)
ALLOWED_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/json",
    }
)
#: types without a magic number: their content is not sniffed
TEXT_TYPES: Final = frozenset({"text/plain", "text/csv", "application/json"})

AVATAR_MAX_BYTES: Final = 2 * 1024 * 1024
#: what an avatar may be, by content, and the extension it is stored with
AVATAR_EXTENSIONS: Final = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}
#: avatars stored in the same millisecond take the next ones
AVATAR_NAME_TRIES: Final = 8
MAX_FILE_NAME: Final = 255  # attachments.file_name is varchar(255)
#: agent replies started and not finished; past this the upload waits for its own
MAX_PENDING_REPLIES: Final = 1024

#: an extension kept in a stored name: a dot and a few plain characters
_SAFE_EXT: Final = re.compile(r"\.[A-Za-z0-9_+~-]{0,32}")

ATTACHMENT_NOT_FOUND: Final = "Attachment not found"
NO_FILE: Final = "No file uploaded"
CONTENT_MISMATCH: Final = "File content does not match declared type"
ONLY_IMAGES: Final = "Only image files are allowed"
AVATAR_TOO_LARGE: Final = "Avatar must be under 2MB"
NAME_TOO_LONG: Final = f"File name must be at most {MAX_FILE_NAME} characters"


def mount(router: ArinovaRouter, state: AppState) -> None:
    area = UploadsArea(state)
    router.add_post(
        "/api/conversations/:conversationId/upload",
        area.upload,
        doc=Doc(
            "Send a file to a conversation",
            {200: obj({"message": s.MESSAGE_WITH_ATTACHMENTS})},
            errors=(503,),
            body=UPLOAD_FORM,
            body_media="multipart/form-data",
            tag="uploads",
        ),
    )
    router.add_get(
        "/api/attachments/:id",
        area.get_attachment,
        doc=Doc("One attachment of an own conversation", {200: s.ATTACHMENT}, tag="uploads"),
    )
    router.add_post(
        "/api/agents/:id/avatar",
        area.upload_avatar,
        doc=Doc(
            "Set an agent's avatar",
            {200: obj({"avatarUrl": STR})},
            errors=(503,),
            body=AVATAR_FORM,
            body_media="multipart/form-data",
            tag="uploads",
        ),
    )
    router.add_get(
        "/uploads/*",
        area.static_file,
        doc=Doc(
            "A stored file (rest.md §3.13)",
            {
                200: Reply({"*/*": None}, headers=("etag", "last-modified")),
                206: Reply({"*/*": None}),
                304: None,
            },
            errors=(400, 403, 404, 416),
            access="none",
            tag="uploads",
        ),
    )


_FILE: Final = {"type": "string", "contentMediaType": "application/octet-stream"}
#: the first file part is the file, whatever its name (rest.md §3.9)
UPLOAD_FORM: Final = Raw(obj({"file": _FILE}, {"caption": STR}))
AVATAR_FORM: Final = Raw(obj({"file": _FILE}))


def stored_extension(file_name: str) -> str:
    """The client name's extension as Node's ``path.extname`` gives it (dot included,
    case kept), or ``""`` when it is not a short run of plain characters."""
    dot = file_name.rfind(".")
    if dot <= 0 or file_name == "..":
        return ""
    ext = file_name[dot:]
    return ext if _SAFE_EXT.fullmatch(ext) else ""


def message_content(caption: str, file_name: str, file_type: str, link: str) -> str:
    label = f"[{file_name}]({link})"
    markdown = f"!{label}" if file_type.startswith("image/") else label
    return f"{caption}\n\n{markdown}" if caption else markdown


def avatar_extension(file_name: str, detected: str) -> str:
    """The client's extension when it names the detected type, else the type's own."""
    dot = file_name.rfind(".")
    ext = file_name[dot + 1 :] if dot >= 0 else ""
    if ext and _SAFE_EXT.fullmatch("." + ext) and type_for_name(f"x.{ext}") == detected:
        return ext
    return AVATAR_EXTENSIONS[detected]


def _check_chat_file(file_name: str, content_type: str) -> None:
    if content_type not in ALLOWED_TYPES:
        raise ApiError.message(400, f"File type {content_type} is not allowed")


def _check_avatar_file(file_name: str, content_type: str) -> None:
    if not content_type.startswith("image/"):
        raise ApiError.message(400, ONLY_IMAGES)


async def sniff_file(path: Path) -> str | None:
    return await asyncio.to_thread(detect_file_type, path)


async def put_shielded(
    storage: Storage, log: logging.Logger, key: str, path: Path, content_type: str
) -> None:
    """``storage.put_file``; if the request is cancelled meanwhile, the put still finishes
    and its file is then removed, so a cancel never leaves an orphan behind."""
    put = asyncio.ensure_future(storage.put_file(key, path, content_type))
    try:
        await asyncio.shield(put)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await put
            await discard_shielded(storage, log, key)
        raise


async def discard_shielded(storage: Storage, log: logging.Logger, key: str) -> None:
    """Remove a file whose rows were not written (best effort, survives cancel)."""
    try:
        await asyncio.shield(storage.delete(key))
    except Exception:
        log.exception("could not remove the orphan upload %s", key)


class UploadsArea:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.settings = state.settings
        self._replies: set[asyncio.Task[None]] = set()
        self._slots = UploadSlots(
            self.settings.max_concurrent_uploads, self.settings.max_concurrent_uploads_per_user
        )

    @property
    def storage(self) -> Storage:
        return self.state.storage

    # -- POST /api/conversations/:conversationId/upload ---------------------------------

    async def upload(self, request: Request) -> Response:
        user = await self.state.auth.require_user(request)
        conversation_id = conversation_id_of(request, "conversationId")
        kind = await self.state.db.fetchval(OWN_CONVERSATION.sql, conversation_id, user.id)
        if kind is None:
            raise conversation_not_found()
        with self._slots.hold(user.id):
            return await self._receive_upload(request, user.id, conversation_id, kind)

    async def _receive_upload(
        self, request: Request, user_id: str, conversation_id: uuid.UUID, kind: str
    ) -> Response:
        async with spooled_form(
            request,
            spool_dir=self.settings.upload_spool_dir,
            max_file_size=self.settings.max_file_size,
            wanted_fields=("caption",),
            check_file=_check_chat_file,
        ) as form:
            upload = form.file
            if upload is None:
                raise ApiError.message(400, NO_FILE)
            assert upload.path is not None
            file_type = upload.content_type
            if file_type not in TEXT_TYPES and await sniff_file(upload.path) != file_type:
                raise ApiError.message(400, CONTENT_MISMATCH)
            file_name = upload.file_name.replace("\0", "")
            if len(file_name) > MAX_FILE_NAME:
                raise ApiError.message(400, NAME_TOO_LONG)
            caption = sanitize_content(form.fields.get("caption", "").replace("\0", ""))

            key = f"{uuid.uuid4()}{stored_extension(file_name)}"
            content = message_content(caption, file_name, file_type, self.storage.link(key))
            await put_shielded(self.storage, self.state.log, key, upload.path, file_type)
        try:
            async with self.state.db.acquire() as conn, conn.transaction():
                if await lock_conversation(conn, conversation_id) is None:
                    raise conversation_not_found()  # deleted since the check above
                row = await conn.fetchrow(
                    INSERT_MESSAGE_WITH_ATTACHMENT.sql,
                    conversation_id,
                    content,
                    file_name,
                    file_type,
                    upload.size,
                    key,
                )
        except BaseException:
            await self._discard(key)
            raise
        assert row is not None

        if kind == "direct":
            await self._start_reply(
                self.state.realtime.reply_to_stored_message(user_id, str(conversation_id), content)
            )
        view = {**message_json(row), "attachments": [attachment_json(row, self.storage.url)]}
        return json_response(200, {"message": view})

    # -- GET /api/attachments/:id --------------------------------------------------------

    async def get_attachment(self, request: Request) -> Response:
        user = await self.state.auth.require_user(request)
        attachment_id = parse_uuid(request.route_values.get("id"))
        if attachment_id is None:
            raise ApiError.message(404, ATTACHMENT_NOT_FOUND)
        row = await self.state.db.fetchrow(OWN_ATTACHMENT.sql, attachment_id, user.id)
        if row is None:
            raise ApiError.message(404, ATTACHMENT_NOT_FOUND)
        return json_response(200, attachment_json(row, self.storage.url))

    # -- POST /api/agents/:id/avatar -----------------------------------------------------

    async def upload_avatar(self, request: Request) -> Response:
        user = await self.state.auth.require_user(request)
        agent_id = agent_id_of(request)
        if await self.state.db.fetchrow(agent_queries.ENDPOINT.sql, agent_id, user.id) is None:
            raise agent_not_found()
        with self._slots.hold(user.id):
            return await self._receive_avatar(request, user.id, agent_id)

    async def _receive_avatar(
        self, request: Request, user_id: str, agent_id: uuid.UUID
    ) -> Response:
        async with spooled_form(
            request,
            spool_dir=self.settings.upload_spool_dir,
            max_file_size=self.settings.max_file_size,
            keep_bytes=AVATAR_MAX_BYTES,
            check_file=_check_avatar_file,
        ) as form:
            upload = form.file
            if upload is None:
                raise ApiError.message(400, NO_FILE)
            if upload.size > AVATAR_MAX_BYTES:
                raise ApiError.message(400, AVATAR_TOO_LARGE)
            assert upload.path is not None
            detected = await sniff_file(upload.path)
            if detected not in AVATAR_EXTENSIONS:
                raise ApiError.message(400, ONLY_IMAGES)

            ext = avatar_extension(upload.file_name, detected)
            pattern = f"avatars/avatar_{agent_id}_{{}}.{ext}"
            key = await self._put_avatar(pattern, upload.path, detected)
        url = self.storage.url(key)
        try:
            stored = await self.state.db.fetchval(SET_AVATAR.sql, agent_id, user_id, url)
        except BaseException:
            await self._discard(key)
            raise
        if stored is None:  # the agent was deleted meanwhile
            await self._discard(key)
            raise agent_not_found()
        return json_response(200, {"avatarUrl": stored})

    # -- GET|HEAD /uploads/* -------------------------------------------------------------

    async def static_file(self, request: Request) -> Response:
        return await serve_upload(request, self.settings.upload_dir, raw_url(request))

    # -- helpers -------------------------------------------------------------------------

    async def _put_avatar(self, pattern: str, path: Path, content_type: str) -> str:
        """Store under ``pattern`` filled with the epoch ms (the next free ms on a clash)."""
        stamp = int(time.time() * 1000)
        for attempt in range(AVATAR_NAME_TRIES):
            key = pattern.format(stamp + attempt)
            try:
                await put_shielded(self.storage, self.state.log, key, path, content_type)
                return key
            except KeyExists:
                continue
        raise StorageError(f"no free avatar name for {pattern!r}")

    async def _discard(self, key: str) -> None:
        await discard_shielded(self.storage, self.state.log, key)

    async def _start_reply(self, reply: Coroutine[Any, Any, None]) -> None:
        """Run the agent pipeline without holding the response (or, when too many
        replies are already running, wait for this one: backpressure)."""
        if len(self._replies) >= MAX_PENDING_REPLIES:
            await self._run_reply(reply)
            return
        task = asyncio.create_task(self._run_reply(reply))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _run_reply(self, reply: Coroutine[Any, Any, None]) -> None:
        try:
            await reply
        except Exception:
            self.state.log.exception("agent reply to an upload failed")
