"""Documents of a case (transcripts, notices, decisions, seized-item lists) and their signatures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.cases.service import mask_id_number
from backend.common import JSONDict, Timestamp, UTCDateTime, UUIDPk, str_enum
from backend.extensions import db
from shared.enums import DocumentStatus, SignerRole
from shared.templates import load_catalogue


class Document(db.Model):
    """A document made from a template; editable as a draft, frozen once finalised.

    ``content`` is the JSON described in ``shared.templates``; ``content_sha256``
    is recorded when the document is finalised and is what signatures cover.
    """

    __tablename__ = "documents"
    __table_args__ = (sa.Index("ix_documents_case_kind_status", "case_id", "kind", "status"),)

    id: Mapped[UUIDPk]
    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    template: Mapped[str] = mapped_column(sa.String(80))
    person_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("case_persons.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[DocumentStatus] = mapped_column(
        str_enum(DocumentStatus, 16), default=DocumentStatus.DRAFT
    )
    person_is_minor: Mapped[bool] = mapped_column(default=False)
    needs_interpreter: Mapped[bool] = mapped_column(default=False)
    needs_witness: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    content: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    request_hash: Mapped[str] = mapped_column(sa.String(64))

    @property
    def masked_id_number(self) -> str | None:
        return mask_id_number(self.signer_id_number)

    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    signatures: Mapped[list[DocumentSignature]] = relationship(
        order_by=lambda: (DocumentSignature.received_at, DocumentSignature.id), lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def etag(self) -> str:
        return f'"{self.id.hex}.{self.version}"'

    @property
    def required_signatures(self) -> list[SignerRole]:
        kind = load_catalogue().kinds[self.kind]
        return list(
            kind.required_signatures(
                minor=self.person_is_minor,
                interpreter=self.needs_interpreter,
                witness=self.needs_witness,
            )
        )

    @property
    def missing_signatures(self) -> list[SignerRole]:
        signed = {s.role for s in self.signatures}
        return [role for role in self.required_signatures if role not in signed]


class DocumentSignature(db.Model):
    """One signer's signature (and fingerprint) over a finalised document's content hash.

    The images are kept as submitted; their hashes, the content hash and the
    submitting device's signature over them are kept beside them.
    """

    __tablename__ = "document_signatures"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "role", name="uq_document_signatures_document_role"),
    )

    id: Mapped[UUIDPk]
    document_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("documents.id"))
    role: Mapped[SignerRole] = mapped_column(str_enum(SignerRole, 24))
    signer_name: Mapped[str] = mapped_column(sa.String(120))
    signer_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    signer_id_number: Mapped[str | None] = mapped_column(sa.String(32))
    strokes: Mapped[list[Any]] = mapped_column(JSONDict, deferred=True)
    strokes_sha256: Mapped[str] = mapped_column(sa.String(64))
    image_png: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    image_sha256: Mapped[str] = mapped_column(sa.String(64))
    fingerprint: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    fingerprint_type: Mapped[str | None] = mapped_column(sa.String(16))
    fingerprint_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    device_pk: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id"))
    device_id: Mapped[str] = mapped_column(sa.String(64))
    device_signature: Mapped[str] = mapped_column(sa.String(128))
    submitted_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    received_at: Mapped[Timestamp]
    request_hash: Mapped[str] = mapped_column(sa.String(64))

    @property
    def masked_id_number(self) -> str | None:
        return mask_id_number(self.signer_id_number)
