"""Attachments: uploaded files checked (size, type, a virus-scan hook) and kept outside the database rows.

The bytes go to a folder (``SAMFLYT_ATTACHMENTS_DIR``, default ``instance/attachments``) under a random id;
the ``attachments`` row says what the file is, and task data holds only the id. Limits come from
``SAMFLYT_ATTACHMENT_MAX_BYTES`` (default 10 MB) and :data:`ALLOWED_TYPES`. A scanner (e.g. ClamAV) plugs
in with :func:`register_scanner`: it gets the bytes and raises :class:`AttachmentError` to refuse them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from . import clock
from .errors import NotFoundError, SamflytError
from .models import Attachment
from .texts import _, joined

#: File name suffix -> media type accepted for upload (documents people attach to applications and reports).
ALLOWED_TYPES = {
    ".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/markdown", ".csv": "text/csv", ".png": "image/png",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".odt": "application/vnd.oasis.opendocument.text", ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_scanners: list[Callable[[bytes, str], None]] = []


class AttachmentError(SamflytError):
    """A file that may not be stored: too large, of a type not accepted, or refused by a scanner."""

    code = "attachment"


def register_scanner(scanner: Callable[[bytes, str], None]) -> None:
    """Add a check every upload must pass (``scanner(content, filename)`` raises to refuse)."""
    _scanners.append(scanner)


def store_dir() -> Path:
    return Path(os.environ.get("SAMFLYT_ATTACHMENTS_DIR", "instance/attachments"))


def max_bytes() -> int:
    return int(os.environ.get("SAMFLYT_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))


def size_text(size: int) -> str:
    """A byte limit as people write it: ``10 MB``, ``2 kB`` (a limit under a megabyte is not "0 MB")."""
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} kB"


def store(session: Session, content: bytes, filename: str, uploaded_by: str, task_id: str | None = None,
          instance_id: int | None = None, accept: list[str] | None = None) -> Attachment:
    """Check and keep an uploaded file; returns its row (the id goes into the form data). ``accept``: the
    suffixes a form field narrows the upload to (its ``accept`` keyword), so a file the next step cannot use
    is refused on the form, next to the field, instead of failing the step after it."""
    suffix = Path(filename).suffix.lower()
    accepted = [a for a in accept if a in ALLOWED_TYPES] if accept else sorted(ALLOWED_TYPES)
    if suffix not in accepted:
        raise AttachmentError(_("%(name)s: files of type %(type)s are not accepted (accepted: %(accepted)s)",
                                name=filename, type=suffix or "(none)", accepted=joined(accepted)))
    if not content:
        raise AttachmentError(_("%(name)s is empty", name=filename))
    if len(content) > max_bytes():
        raise AttachmentError(_("%(name)s is larger than %(size)s", name=filename, size=size_text(max_bytes())))
    for scan in _scanners:
        scan(content, filename)
    attachment_id = str(uuid.uuid4())
    folder = store_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / attachment_id).write_bytes(content)
    row = Attachment(id=attachment_id, filename=Path(filename).name[:255], media_type=ALLOWED_TYPES[suffix],
                     size=len(content), sha256=hashlib.sha256(content).hexdigest(), uploaded_by=uploaded_by,
                     uploaded_at=clock.now(), task_id=task_id, instance_id=instance_id)
    session.add(row)
    return row


def load(session: Session, attachment_id: str) -> tuple[Attachment, bytes]:
    row = session.get(Attachment, attachment_id)
    path = store_dir() / attachment_id
    if row is None or not path.is_file():
        raise NotFoundError(_("no attachment %(attachment)s", attachment=attachment_id))
    return row, path.read_bytes()
