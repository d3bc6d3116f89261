"""Documents from templates, their drafts, finalising, signatures and verification.

A document is made from its case type's template for its kind, prefilled with
the case's and the person's real data (it is a legal record). A draft is
edited; finalising freezes it and records ``content_sha256``; signatures cover
that hash, and when every required role has signed the document is ``signed``
and nothing more is accepted. Creating, finalising and completing the
signatures are case events.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from backend.cases import service as cases
from backend.cases.models import Case, CasePerson, Incident
from backend.common import utcnow
from backend.devices import service as devices
from backend.documents import pdf
from backend.documents.models import Document, DocumentSignature
from backend.documents.schemas import FINGERPRINT_MAX_BYTES, SIGNATURE_IMAGE_MAX_BYTES
from backend.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from backend.extensions import db
from backend.org.models import Unit, User
from backend.org.service import visible_unit_ids
from shared import signing
from shared.enums import DocumentStatus, Role, SignerRole
from shared.templates import (
    CHINA_STANDARD_TIME,
    OFFICER_ROLES,
    RIGHTS_NOTICE_ID,
    SIGNATURE_PURPOSE,
    SOURCES,
    Catalogue,
    Kind,
    Template,
    canonical_json,
    content_sha256,
    format_date,
    format_time,
    is_minor,
    load_catalogue,
    sha256_hex,
    signature_fields,
)

CLOCK_SKEW = timedelta(minutes=10)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
MAX_IMAGE_SIDE = 8192
STATUS_LABELS = {
    DocumentStatus.DRAFT: "草稿",
    DocumentStatus.FINALIZED: "已定稿，待签名",
    DocumentStatus.SIGNED: "已签名",
}
TAMPERED_LABEL = "警告：内容与定稿时的哈希不符"


def _invalid(field: str, message: str, detail: str | None = None) -> Unprocessable:
    return Unprocessable(detail or message, errors={"json": {field: [message]}})


# The template catalogue


def catalogue() -> dict[str, Any]:
    """Kinds, templates and question banks, for clients that fill documents offline."""
    data = load_catalogue()
    return {
        "signer_roles": {str(role): label for role, label in data.signer_roles.items()},
        "topics": dict(data.topics),
        "sources": sorted(SOURCES),
        "kinds": [_kind_view(data, kind) for kind in data.kinds.values()],
        "templates": [_template_view(t) for t in data.templates.values()],
    }


def _kind_view(data: Catalogue, kind: Kind) -> dict[str, Any]:
    return {
        "id": kind.id,
        "label": kind.label,
        "body": kind.body,
        "case_types": sorted(kind.case_types),
        "person": kind.person,
        "signatures": kind.signatures,
        "optional": kind.optional,
        "guardian_if_minor": kind.guardian_if_minor,
        "interpreter_if_needed": kind.interpreter_if_needed,
        "witness_if_attested": kind.witness_if_attested,
        "generated": kind.generated,
        "rights_notice": kind.rights_notice,
        "signer_labels": {
            str(role): data.signer_label(kind, role) for role in (*kind.signatures, *kind.optional)
        },
    }


def _template_view(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "case_type": template.case_type,
        "kind": template.kind.id,
        "title": template.title,
        "persons": sorted(template.persons),
        "person_role_labels": {str(r): label for r, label in template.person_role_labels.items()},
        "header": template.header,
        "rights_notice": dict(template.rights_notice),
        "questions": template.questions,
        "sections": template.sections,
    }


def kind_of(document: Document) -> Kind:
    return load_catalogue().kinds[document.kind]


def template_of(document: Document, case: Case) -> Template:
    template = load_catalogue().template(case.case_type, document.kind)
    if template is None:  # the template files no longer offer this kind here
        raise Conflict("The template of this document is no longer available.")
    return template


# Reading


def get_document(
    user: User, document_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Case, Document]:
    """The document and its case; 404 when the case is outside the user's units.

    Writers lock the case row (every document change is also a case change), then
    read the document again under that lock.
    """
    document = db.session.get(Document, document_id)
    if document is None:
        raise NotFound("No such document.")
    case = cases.get_case(user, document.case_id, for_update=for_update)
    if for_update:
        document = db.session.get_one(Document, document_id, populate_existing=True)
    return case, document


def list_documents(case: Case) -> list[Document]:
    return list(
        db.session.scalars(
            sa.select(Document)
            .where(Document.case_id == case.id)
            .order_by(Document.created_at, Document.id)
        )
    )


def get_signature(document: Document, signature_id: uuid.UUID) -> DocumentSignature:
    signature = db.session.get(DocumentSignature, signature_id)
    if signature is None or signature.document_id != document.id:
        raise NotFound("No such signature of this document.")
    return signature


def signed_kinds(case_id: uuid.UUID) -> set[str]:
    """The document kinds with at least one signed document in the case."""
    return set(
        db.session.scalars(
            sa.select(Document.kind)
            .where(Document.case_id == case_id, Document.status == DocumentStatus.SIGNED)
            .distinct()
        )
    )


def check_if_match(document: Document, if_match: str | None) -> None:
    """Optimistic concurrency on a document: 428 without If-Match, 412 when stale."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the document's current ETag.")
    if document.etag not in [tag.strip() for tag in if_match.split(",")]:
        raise PreconditionFailed(
            "The document has changed since you read it.", current_etag=document.etag
        )


# Creating


def create_document(user: User, case: Case, data: dict[str, Any]) -> tuple[Document, bool]:
    """A draft from the template of its kind for the case's type, prefilled.

    Offline clients send their own id: a resend of the same request returns the
    stored document; the same id with another request is a conflict. Kinds the
    platform writes itself (``generated``) are refused: such a record is only ever
    made from what it records.
    """
    if load_catalogue().kinds[data["kind"]].generated:
        raise _invalid("kind", "The platform writes documents of this kind; none is made by hand.")
    document_id = data.pop("id") or uuid.uuid4()
    digest = cases.content_hash({"case_id": case.id.hex, **data})
    existing = db.session.get(Document, document_id)
    if existing is not None:
        if existing.case_id == case.id and existing.request_hash == digest:
            return existing, False
        raise Conflict("A document with this id exists with other content.")
    cases.ensure_open(case)
    template = load_catalogue().template(case.case_type, data["kind"])
    if template is None:
        raise _invalid("kind", f"Not a document of {case.case_type} cases.")
    person = _person_for(case, template, data["person_id"])
    now = utcnow()
    minor = data["person_is_minor"]
    if minor is None:
        minor = bool(
            person and is_minor(person.id_number, now.astimezone(CHINA_STANDARD_TIME).date())
        )
    content = template.draft(
        _facts(case, person, template, user, now), person.role if person else None
    )
    if data["title"]:
        content["title"] = data["title"]
    document, created = cases.store_once(
        Document(
            id=document_id,
            case_id=case.id,
            kind=template.kind.id,
            template=template.id,
            person_id=person.id if person else None,
            title=content["title"],
            status=DocumentStatus.DRAFT,
            person_is_minor=minor,
            needs_interpreter=data["needs_interpreter"],
            content=content,
            request_hash=digest,
            created_by=user.id,
            created_at=now,
            updated_at=now,
        ),
        lambda stored: stored.case_id == case.id and stored.request_hash == digest,
        "A document",
    )
    if created:
        cases.append_event(case, "document_created", user, payload=_event_payload(document))
    return document, created


def _person_for(case: Case, template: Template, person_id: uuid.UUID | None) -> CasePerson | None:
    if not template.kind.person:
        if person_id is not None:
            raise _invalid("person_id", "This kind of document is not about one person.")
        return None
    if person_id is None:
        raise _invalid("person_id", "Name the case person the document is about.")
    person = db.session.get(CasePerson, person_id)
    if person is None or person.case_id != case.id:
        raise _invalid("person_id", "No such person in this case.")
    if person.role not in template.persons:
        raise _invalid(
            "person_id", f"A {template.kind.id} is not made for a person in role {person.role}."
        )
    return person


def _facts(
    case: Case, person: CasePerson | None, template: Template, officer: User, now: datetime
) -> dict[str, str]:
    """The values a template's sources name, from the case, its incident and the person."""
    unit = db.session.get_one(Unit, case.unit_id)
    facts = {
        "case.number": case.number,
        "case.title": case.title,
        "unit.name": unit.name,
        "officer.name": officer.display_name,
        "today": format_date(now.astimezone(CHINA_STANDARD_TIME).date()),
    }
    incident = db.session.get(Incident, case.incident_id) if case.incident_id else None
    if incident is not None:
        facts["incident.place"] = incident.place
        facts["incident.occurred_at"] = format_time(incident.occurred_at)
    if person is not None:
        role = template.person_role_labels.get(person.role)
        facts |= {
            "person.name": person.name,
            "person.role": role.zh if role else str(person.role),
            "person.id_number": person.id_number or "",
            "person.phone": person.phone or "",
            "person.address": person.address or "",
        }
    return facts


def _event_payload(document: Document, **extra: Any) -> dict[str, Any]:
    return {"document_id": str(document.id), "kind": document.kind, **extra}


# Editing and finalising


def _ensure_draft(document: Document) -> None:
    if document.status != DocumentStatus.DRAFT:
        raise Conflict(
            f"The document is {document.status}; it can no longer change.",
            slug="document-frozen",
        )


def edit_document(user: User, case: Case, document: Document, edits: dict[str, Any]) -> Document:
    """Apply ``edits`` (``DocumentEditSchema``) to a draft."""
    _ensure_draft(document)
    cases.ensure_open(case)
    template = template_of(document, case)
    body = template.kind.body
    for name in ("qa", "sections", "items"):
        if name in edits and name != body:
            raise _invalid(name, f"A {document.kind} has no {name}; its body is {body}.")
    content = dict(document.content)
    if "title" in edits:
        content["title"] = edits["title"]
    if "header" in edits:
        content["header"] = _edited_header(content["header"], edits["header"])
    if "qa" in edits:
        content["qa"] = _edited_qa(template, content["qa"], edits["qa"])
    if "sections" in edits:
        content["sections"] = _edited_sections(template, content["sections"], edits["sections"])
    if "items" in edits:
        content["items"] = [dict(item) for item in edits["items"]]
    for flag in ("person_is_minor", "needs_interpreter"):
        if flag in edits:
            setattr(document, flag, edits[flag])
    document.content = content
    document.title = content["title"]
    document.updated_at = utcnow()
    db.session.flush()
    return document


def _edited_header(header: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    unknown = {key: ["Not a field of this document."] for key in changes if key not in header}
    if unknown:
        raise Unprocessable(
            "The header names unknown fields.", errors={"json": {"header": unknown}}
        )
    return {**header, **changes}


def _edited_qa(
    template: Template, stored: list[dict[str, Any]], entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The new question list; a transcript's rights notice stays first, its question unchanged."""
    qa = [{"id": e["id"], "question": e["question"], "answer": e["answer"]} for e in entries]
    notices = [i for i, entry in enumerate(qa) if entry["id"] == RIGHTS_NOTICE_ID]
    if template.kind.rights_notice:
        notice = stored[0]
        if notices != [0] or qa[0]["question"] != notice["question"]:
            raise _invalid(
                "qa",
                "The rights notice must stay the first entry, its question unchanged.",
                "The rights notice cannot be removed or changed.",
            )
    elif notices:
        raise _invalid("qa", f"Only the rights notice uses the id {RIGHTS_NOTICE_ID!r}.")
    return qa


def _edited_sections(
    template: Template, stored: list[dict[str, str]], changes: dict[str, str]
) -> list[dict[str, str]]:
    errors: dict[str, list[str]] = {}
    for key, text in changes.items():
        spec = template.section(key)
        current = next((s for s in stored if s["key"] == key), None)
        if spec is None or current is None:
            errors[key] = ["Not a section of this document."]
        elif spec.locked and text != current["text"]:
            errors[key] = ["This text is fixed by law and cannot be edited."]
    if errors:
        raise Unprocessable(
            "The sections could not be changed.", errors={"json": {"sections": errors}}
        )
    return [{**s, "text": changes.get(s["key"], s["text"])} for s in stored]


def finalize_document(user: User, case: Case, document: Document) -> Document:
    """Freeze a complete draft and record the hash signatures will cover."""
    _ensure_draft(document)
    cases.ensure_open(case)
    missing = template_of(document, case).incomplete(document.content)
    if missing:
        raise Unprocessable(
            "The document is not complete; fill in what is listed before finalising.",
            slug="document-incomplete",
            errors={"json": missing},
        )
    now = utcnow()
    document.status = DocumentStatus.FINALIZED
    document.content_sha256 = content_sha256(document.content)
    document.finalized_at, document.finalized_by = now, user.id
    document.updated_at = now
    db.session.flush()
    cases.append_event(
        case,
        "document_finalized",
        user,
        payload=_event_payload(document, content_sha256=document.content_sha256),
    )
    return document


# Signatures


def add_signature(
    user: User, case: Case, document: Document, data: dict[str, Any]
) -> tuple[DocumentSignature, bool]:
    """Record one signer's signature over the document's content hash.

    Checked in this order: the images (422), the device's signature over the
    submission (422; 403 for a revoked device), the document's state and hash
    (409), the signer (422; 409 for a role or officer that already signed).
    """
    image = _decoded(data["image_png"], "image_png", SIGNATURE_IMAGE_MAX_BYTES)
    if not _is_png(image):
        raise _invalid("image_png", "Not a PNG image.")
    fingerprint, fingerprint_type = None, None
    if data["fingerprint_png"] is not None:
        fingerprint = _decoded(data["fingerprint_png"], "fingerprint_png", FINGERPRINT_MAX_BYTES)
        fingerprint_type = _image_type(fingerprint)
        if fingerprint_type is None:
            raise _invalid("fingerprint_png", "Not a PNG or JPEG image.")
    fields = signature_fields(
        document_id=str(document.id),
        content_sha256=data["content_sha256"],
        signer_role=data["signer_role"],
        signer_name=data["signer_name"],
        signer_user_id=str(data["signer_user_id"]) if data["signer_user_id"] else None,
        signer_id_number=data["signer_id_number"],
        signed_at=data["signed_at"],
        image_png=image,
        fingerprint=fingerprint,
        strokes=data["strokes"],
        device_id=data["device_id"],
    )
    digest = sha256_hex(canonical_json({**fields, "device_signature": data["device_signature"]}))
    if data["id"] is not None:
        existing = db.session.get(DocumentSignature, data["id"])
        if existing is not None:
            if existing.document_id == document.id and existing.request_hash == digest:
                return existing, False
            raise Conflict("A signature with this id exists with other content.")
    device = devices.verify_submission(
        user, data["device_id"], SIGNATURE_PURPOSE, fields, data["device_signature"]
    )
    now = utcnow()
    if data["signed_at"] > now + CLOCK_SKEW:
        raise _invalid("signed_at", "Lies in the future.")
    cases.ensure_open(case)
    _ensure_signable(document, data["content_sha256"])
    role = data["signer_role"]
    _check_signer(case, document, role, data)
    signature = DocumentSignature(
        id=data["id"] or uuid.uuid4(),
        role=role,
        signer_name=data["signer_name"],
        signer_user_id=data["signer_user_id"],
        signer_id_number=data["signer_id_number"],
        strokes=data["strokes"],
        strokes_sha256=fields["strokes_sha256"],
        image_png=image,
        image_sha256=fields["image_sha256"],
        fingerprint=fingerprint,
        fingerprint_type=fingerprint_type,
        fingerprint_sha256=fields["fingerprint_sha256"],
        signed_at=data["signed_at"],
        content_sha256=data["content_sha256"],
        device_pk=device.id,
        device_id=device.device_id,
        device_signature=data["device_signature"],
        submitted_by=user.id,
        received_at=now,
        request_hash=digest,
    )
    document.signatures.append(signature)
    document.updated_at = now
    db.session.flush()
    if not document.missing_signatures:
        document.status, document.signed_at = DocumentStatus.SIGNED, now
        db.session.flush()
        cases.append_event(
            case,
            "document_signed",
            user,
            payload=_event_payload(document, content_sha256=document.content_sha256),
        )
    return signature, True


def _decoded(text: str, field: str, limit: int) -> bytes:
    try:
        raw = signing.b64decode(text)
    except signing.SigningError as exc:
        raise _invalid(field, "Not valid base64.") from exc
    if not raw:
        raise _invalid(field, "Empty.")
    if len(raw) > limit:
        raise _invalid(field, f"At most {limit} bytes.")
    return raw


def _is_png(data: bytes) -> bool:
    """A well-formed PNG by its bytes: signature, IHDR first with sane dimensions, every
    chunk's CRC, image data, and IEND last."""
    if not data.startswith(PNG_MAGIC):
        return False
    position, seen_data = len(PNG_MAGIC), False
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunk_type = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return False
        if zlib.crc32(data[position + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            return False
        if position == len(PNG_MAGIC):
            if chunk_type != b"IHDR" or length != 13:
                return False
            width = int.from_bytes(data[position + 8 : position + 12], "big")
            height = int.from_bytes(data[position + 12 : position + 16], "big")
            if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
                return False
        seen_data = seen_data or chunk_type == b"IDAT"
        if chunk_type == b"IEND":
            return seen_data and end == len(data)
        position = end
    return False


def _image_type(data: bytes) -> str | None:
    if _is_png(data):
        return "image/png"
    if data.startswith(JPEG_MAGIC) and data.endswith(JPEG_END) and len(data) > 4:
        return "image/jpeg"
    return None


def _ensure_signable(document: Document, shown_hash: str) -> None:
    if document.status == DocumentStatus.DRAFT:
        raise Conflict(
            "The document is a draft; finalise it before it is signed.", slug="document-draft"
        )
    if document.status == DocumentStatus.SIGNED:
        raise Conflict(
            "The document is signed by everyone it needs; it takes no more signatures.",
            slug="document-frozen",
        )
    if shown_hash != document.content_sha256:
        raise Conflict(
            "The signer saw other content than the document holds; show the document again.",
            slug="content-changed",
            content_sha256=document.content_sha256,
        )


def _check_signer(case: Case, document: Document, role: SignerRole, data: dict[str, Any]) -> None:
    kind = kind_of(document)
    if not kind.accepts(role) and role not in document.required_signatures:
        raise _invalid("signer_role", f"A {document.kind} is not signed by a {role}.")
    if any(s.role == role for s in document.signatures):
        raise Conflict(f"The {role} has already signed this document.", slug="already-signed")
    user_id = data["signer_user_id"]
    if role in OFFICER_ROLES:
        officer = db.session.get(User, user_id) if user_id else None
        if not (
            officer is not None
            and officer.active
            and officer.has_role(Role.OFFICER)
            and case.unit_id in visible_unit_ids(officer)
        ):
            raise _invalid("signer_user_id", "Must be an officer of the case's units.")
        if data["signer_name"] != officer.display_name:
            raise _invalid("signer_name", "Must be the officer's name.")
        if any(s.signer_user_id == officer.id for s in document.signatures):
            raise Conflict(
                "This officer has already signed; two different officers must sign.",
                slug="same-officer",
            )
    elif user_id is not None:
        raise _invalid("signer_user_id", "Only officers sign as users.")
    if role == SignerRole.PARTY and document.person_id is not None:
        person = db.session.get_one(CasePerson, document.person_id)
        if data["signer_name"] != person.name:
            raise _invalid("signer_name", "Must be the name of the person the document is about.")


# Verification and printing


def verification(case: Case, document: Document) -> dict[str, Any]:
    """The recorded hash against the stored content, and what each signature covers."""
    computed = content_sha256(document.content)
    matches = document.content_sha256 is not None and document.content_sha256 == computed
    kind = kind_of(document)
    signatures = []
    for signature in document.signatures:
        intact = sha256_hex(signature.image_png) == signature.image_sha256 and (
            signature.fingerprint is None
            or sha256_hex(signature.fingerprint) == signature.fingerprint_sha256
        )
        signatures.append(
            {
                "role": signature.role,
                "role_label": load_catalogue().signer_label(kind, signature.role).zh,
                "signer_name": signature.signer_name,
                "signed_at": signature.signed_at,
                "covers_content": signature.content_sha256 == document.content_sha256,
                "image_intact": intact,
            }
        )
    return {
        "document_id": document.id,
        "kind": document.kind,
        "title": document.title,
        "case_number": case.number,
        "status": document.status,
        "content_sha256": document.content_sha256,
        "computed_sha256": computed,
        "matches": matches,
        "valid": matches and all(s["covers_content"] and s["image_intact"] for s in signatures),
        "signatures": signatures,
    }


def ensure_printable(document: Document) -> None:
    if document.status == DocumentStatus.DRAFT:
        raise Conflict("A draft is not printed; finalise it first.", slug="document-draft")


def print_document(case: Case, document: Document, verify_url: str) -> pdf.PrintDocument:
    """What the PDF shows: the content, the signatures and where to verify it."""
    template = template_of(document, case)
    kind = template.kind
    content = document.content
    shown_elsewhere = {"case.number", "unit.name"}
    header = tuple(
        (field.label.zh, content["header"].get(field.key, ""))
        for field in template.header
        if field.source not in shown_elsewhere
    )
    return pdf.PrintDocument(
        title=content["title"],
        kind_label=kind.label.zh,
        case_number=case.number,
        unit_name=db.session.get_one(Unit, case.unit_id).name,
        header_fields=header,
        blocks=_print_blocks(kind, content),
        signatures=tuple(
            pdf.PrintSignature(
                role_label=load_catalogue().signer_label(kind, s.role).zh,
                name=s.signer_name,
                signed_at=s.signed_at,
                image_png=s.image_png,
                fingerprint_png=s.fingerprint,
            )
            for s in document.signatures
        ),
        content_sha256=document.content_sha256 or "",
        verify_url=verify_url,
        status_label=STATUS_LABELS[document.status]
        if content_sha256(content) == document.content_sha256
        else TAMPERED_LABEL,
    )


ITEM_COLUMNS = ("序号", "名称", "数量", "特征", "备注")


def _print_blocks(kind: Kind, content: dict[str, Any]) -> tuple[pdf.PrintBlock, ...]:
    if kind.body == "qa":
        return tuple(
            pdf.PrintBlock("qa", question=e["question"], answer=e["answer"]) for e in content["qa"]
        )
    if kind.body == "sections":
        return tuple(
            block
            for section in content["sections"]
            for block in (
                pdf.PrintBlock("heading", text=section["heading"]),
                pdf.PrintBlock("paragraph", text=section["text"]),
            )
        )
    rows = tuple(
        (str(n), item["name"], item["quantity"], item["features"], item["note"])
        for n, item in enumerate(content["items"], start=1)
    )
    return (pdf.PrintBlock("table", rows=(ITEM_COLUMNS, *rows)),)
