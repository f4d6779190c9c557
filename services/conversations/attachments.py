"""Who may download an attachment, and clearing files that no message came to own."""

from datetime import UTC, datetime, timedelta

import nats.js.errors
from sqlmodel import Session, col, select

from contracts.conversations import AttachmentFile, GetAttachment
from contracts.errors import ErrorCode, ServiceError
from services.conversations import store
from services.conversations.models import Attachment, Message
from services.runtime.logging import get_logger
from services.runtime.objects import ATTACHMENTS_BUCKET, delete_attachments
from services.runtime.service import Service

log = get_logger("portico.conversations")

# The gateway stores files before the message that owns them commits; a file still unowned after
# this long belongs to a request that failed or was refused, and is deleted.
ORPHAN_AFTER = timedelta(hours=1)


def attachment_file(session: Session, request: GetAttachment) -> AttachmentFile:
    missing = ServiceError(ErrorCode.not_found, "No such attachment.")
    attachment = session.get(Attachment, request.attachment_id)
    if attachment is None or attachment.deleted_at is not None:
        raise missing
    if request.viewer is not None:
        store.portal_open(session, request.viewer)
        store.visible(session, request.viewer, attachment.conversation_id)
        message = session.get(Message, attachment.message_id)
        if message is None or message.visibility != "public":
            raise missing  # a file on an internal note is the agents' alone
    elif request.actor is not None:
        store.agent_author(request.actor)
        store.of_org(session, request.actor.org_id, attachment.conversation_id)
    else:
        raise missing
    return AttachmentFile(id=attachment.id, filename=attachment.filename, content_type=attachment.content_type,
                          size=attachment.size, sha256=attachment.sha256)


def _owned(session: Session, names: list[str]) -> set[str]:
    return set(session.exec(select(Attachment.id).where(col(Attachment.id).in_(names))).all())


async def delete_orphans(service: Service) -> None:
    js = service.broker.config.connection_state.stream
    bucket = await js.object_store(ATTACHMENTS_BUCKET)
    try:
        infos = await bucket.list(ignore_deletes=True)
    except nats.js.errors.NotFoundError:
        return
    cutoff = datetime.now(UTC) - ORPHAN_AFTER
    # mtime has nanoseconds, which `fromisoformat` does not take; seconds are enough here.
    old = [i.name for i in infos if i.name and i.mtime
           and datetime.fromisoformat(i.mtime[:19]).replace(tzinfo=UTC) < cutoff]
    if not old:
        return
    owned = await service.read(_owned, old)
    unowned = [name for name in old if name not in owned]
    await delete_attachments(js, unowned)
    if unowned:
        log.info("unowned attachments deleted", attachment_ids=unowned)
