"""Documents, signatures and printable PDFs."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, request

from backend.api import Blueprint
from backend.audit import service as audit
from backend.auth.access import current_user, roles_required
from backend.cases import service as cases
from backend.documents import pdf, service
from backend.documents.models import Document, DocumentSignature
from backend.documents.schemas import (
    CatalogueSchema,
    DocumentCreateSchema,
    DocumentEditSchema,
    DocumentSchema,
    DocumentSummarySchema,
    SignatureCreateSchema,
    SignatureSchema,
    VerificationSchema,
)
from backend.errors import NotFound, Problem
from shared.enums import CASE_READER_ROLES, Role

blp = Blueprint(
    "documents",
    __name__,
    url_prefix="/api/v1",
    description="Documents, signatures and printable PDFs",
)

READERS = sorted(CASE_READER_ROLES)
MIB = 1024 * 1024
SIGNATURE_BODY_MAX_BYTES = 8 * MIB
LARGE_BODIES = {"documents.add_signature": SIGNATURE_BODY_MAX_BYTES}
"""Endpoints whose bodies may exceed the global cap (``MAX_CONTENT_LENGTH``)."""

BINARY = {"type": "string", "format": "binary"}
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The document's ETag, as read with the document",
}

Result = tuple[Any, int, dict[str, str]]


@blp.url_value_preprocessor
def _raise_body_cap(endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Signatures carry images. Their cap is set before any ``before_request`` hook
    (idempotency) reads the body."""
    if endpoint in LARGE_BODIES:
        request.max_content_length = LARGE_BODIES[endpoint]


def document_response(document: Document, status: int = 200) -> Result:
    return document, status, {"ETag": document.etag}


@blp.route("/document-templates")
@blp.response(200, CatalogueSchema)
def list_templates() -> dict[str, Any]:
    """Document kinds, their templates per case type and the question banks.

    Clients fill documents offline with them; ``shared.templates`` holds the
    same data and the prefill, hashing and signing rules.
    """
    return service.catalogue()


@blp.route("/cases/<uuid:case_id>/documents", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(DocumentCreateSchema)
@blp.response(201, DocumentSchema, headers=ETAG_HEADER)
@blp.alt_response(200, schema=DocumentSchema, description="Resent with the same id and content")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_document(data: dict[str, Any], case_id: uuid.UUID) -> Result:
    """Start a draft from the template of its kind, prefilled with case and person data.

    A transcript starts with the rights notice, which stays its first question.
    """
    user = current_user()
    document, created = service.create_document(
        user, cases.get_case(user, case_id, for_update=True), data
    )
    audit.target("document", document.id)
    return document_response(document, 201 if created else 200)


@blp.route("/cases/<uuid:case_id>/documents")
@roles_required(*READERS)
@blp.response(200, DocumentSummarySchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_documents(case_id: uuid.UUID) -> list[Document]:
    """The case's documents without their content (so without identity data), oldest first."""
    return service.list_documents(cases.get_case(current_user(), case_id))


@blp.route("/documents/<uuid:document_id>")
@roles_required(*READERS)
@blp.response(200, DocumentSchema, headers=ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
def get_document(document_id: uuid.UUID) -> Result:
    """A document with its content; its ``ETag`` goes in ``If-Match`` when you change it.

    The content holds the person's real identity data: each read is audited.
    """
    _, document = service.get_document(current_user(), document_id)
    audit.target("document", document.id)
    return document_response(document)


@blp.route("/documents/<uuid:document_id>", methods=["PATCH"])
@roles_required(Role.OFFICER)
@blp.arguments(DocumentEditSchema)
@blp.response(200, DocumentSchema, headers=ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.doc(parameters=[IF_MATCH])
def edit_document(data: dict[str, Any], document_id: uuid.UUID) -> Result:
    """Edit a draft; a finalised or signed document no longer changes (409)."""
    user = current_user()
    case, document = service.get_document(user, document_id, for_update=True)
    audit.target("document", document.id)
    service.check_if_match(document, request.headers.get("If-Match"))
    return document_response(service.edit_document(user, case, document, data))


@blp.route("/documents/<uuid:document_id>/finalize", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.response(200, DocumentSchema, headers=ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="The draft is incomplete")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.doc(parameters=[IF_MATCH])
def finalize_document(document_id: uuid.UUID) -> Result:
    """Freeze the draft you read (``If-Match``) and record its ``content_sha256``:
    the SHA-256 of the content's canonical JSON, which every signature covers."""
    user = current_user()
    case, document = service.get_document(user, document_id, for_update=True)
    audit.target("document", document.id)
    service.check_if_match(document, request.headers.get("If-Match"))
    return document_response(service.finalize_document(user, case, document))


@blp.route("/documents/<uuid:document_id>/signatures", methods=["POST"])
@roles_required(Role.OFFICER)
@blp.arguments(SignatureCreateSchema)
@blp.response(201, SignatureSchema)
@blp.alt_response(200, schema=SignatureSchema, description="Resent with the same id and content")
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def add_signature(data: dict[str, Any], document_id: uuid.UUID) -> tuple[DocumentSignature, int]:
    """Add a signature (and fingerprint) over the finalised document's content hash.

    Submitted from the officer's enrolled device, which signs the fields listed
    in the request schema; a revoked device is refused (403). A hash other than
    the document's is refused (409): a changed document cannot be signed. Each
    role signs once and the two officers are two different users; when every
    required role has signed, the document is ``signed`` and takes nothing more.
    Bodies up to 8 MiB.
    """
    user = current_user()
    case, document = service.get_document(user, document_id, for_update=True)
    audit.target("document", document.id)
    signature, created = service.add_signature(user, case, document, data)
    audit.target("document_signature", signature.id)
    return signature, 201 if created else 200


@blp.route("/documents/<uuid:document_id>/signatures")
@roles_required(*READERS)
@blp.response(200, SignatureSchema(many=True))
@blp.alt_response(404, response="NOT_FOUND")
def list_signatures(document_id: uuid.UUID) -> list[DocumentSignature]:
    """The document's signatures, without their images."""
    _, document = service.get_document(current_user(), document_id)
    return document.signatures


def _signature(document_id: uuid.UUID, signature_id: uuid.UUID) -> DocumentSignature:
    _, document = service.get_document(current_user(), document_id)
    signature = service.get_signature(document, signature_id)
    audit.target("document_signature", signature.id)
    return signature


def _image(data: bytes, content_type: str, digest: str) -> Response:
    response = Response(data, mimetype=content_type)
    response.headers["ETag"] = f'"{digest}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/documents/<uuid:document_id>/signatures/<uuid:signature_id>/image")
@roles_required(*READERS)
@blp.response(200, BINARY, content_type="image/png", description="The signature as drawn")
@blp.alt_response(404, response="NOT_FOUND")
def get_signature_image(document_id: uuid.UUID, signature_id: uuid.UUID) -> Response:
    signature = _signature(document_id, signature_id)
    return _image(signature.image_png, "image/png", signature.image_sha256)


@blp.route("/documents/<uuid:document_id>/signatures/<uuid:signature_id>/fingerprint")
@roles_required(*READERS)
@blp.response(200, BINARY, content_type="image/png", description="The fingerprint, PNG or JPEG")
@blp.alt_response(404, response="NOT_FOUND", description="No such signature, or no fingerprint")
@blp.doc(responses={200: {"content": {"image/jpeg": {"schema": BINARY}}}})
def get_signature_fingerprint(document_id: uuid.UUID, signature_id: uuid.UUID) -> Response:
    signature = _signature(document_id, signature_id)
    if signature.fingerprint is None or signature.fingerprint_type is None:
        raise NotFound("This signature has no fingerprint.")
    return _image(signature.fingerprint, signature.fingerprint_type, signature.fingerprint_sha256)


@blp.route("/documents/<uuid:document_id>/pdf")
@roles_required(*READERS)
@blp.response(
    200,
    BINARY,
    content_type="application/pdf",
    description="The document for printing and archiving",
    headers={"Content-Disposition": {"schema": {"type": "string"}}},
)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT", description="A draft is not printed")
@blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="No CJK font installed")
def get_pdf(document_id: uuid.UUID) -> Response:
    """A finalised or signed document as PDF: content, signatures and fingerprints, and on
    every page the content hash and a QR code of the verification link."""
    case, document = service.get_document(current_user(), document_id)
    audit.target("document", document.id)
    service.ensure_printable(document)
    base = current_app.config["PUBLIC_BASE_URL"] or request.url_root
    verify_url = f"{base.rstrip('/')}/api/v1/documents/{document.id}/verify"
    printable = service.print_document(case, document, verify_url)
    try:
        data = pdf.render_pdf(printable, current_app.config["PDF_FONT"])
    except pdf.FontMissing as exc:
        raise Problem(
            "no CJK font installed; set FIELDCASE_PDF_FONT", status=503, slug="pdf-font-missing"
        ) from exc
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'inline; filename="{document.kind}-{document.id}.pdf"'
    )
    return response


@blp.route("/documents/<uuid:document_id>/verify")
@roles_required(*READERS)
@blp.response(200, VerificationSchema)
@blp.alt_response(404, response="NOT_FOUND")
def verify_document(document_id: uuid.UUID) -> dict[str, Any]:
    """Whether the stored content still has the hash recorded when it was finalised,
    and the signatures over it. The QR code on the PDF opens this."""
    case, document = service.get_document(current_user(), document_id)
    audit.target("document", document.id)
    return service.verification(case, document)
