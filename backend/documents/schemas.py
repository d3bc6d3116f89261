from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.cases.schemas import ID_NUMBER, INSTANT
from backend.lifecycle import DEVICE_ID_PATTERN
from shared.enums import CaseType, DocumentStatus, PersonRole, SignerRole
from shared.templates import SOURCES, load_catalogue

SHA256_HEX = validate.Regexp(r"^[0-9a-f]{64}$", error="Must be 64 lower-case hex digits.")
ENTRY_ID = validate.Regexp(r"^[a-z0-9_]{1,40}$")

SIGNATURE_IMAGE_MAX_BYTES = 1024 * 1024
FINGERPRINT_MAX_BYTES = 2 * 1024 * 1024
MAX_STROKES = 100
MAX_STROKE_POINTS = 400
MAX_POINT_VALUE = 3_600_000


class WholeNumber(ma.fields.Integer):
    """An integer. As in JSON Schema, a number with a zero fraction (``3.0``) is one;
    strings, booleans and fractions are not."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def base64_length(raw_bytes: int) -> int:
    return 4 * -(-raw_bytes // 3)


def _kind_ids() -> list[str]:
    return sorted(load_catalogue().kinds)


# The template catalogue


class LabelSchema(Schema):
    zh = ma.fields.String()
    en = ma.fields.String()


class KindSchema(Schema):
    id = ma.fields.String()
    label = ma.fields.Nested(LabelSchema)
    body = ma.fields.String(metadata={"description": "qa | sections | items"})
    case_types = ma.fields.List(ma.fields.Enum(CaseType, by_value=True))
    person = ma.fields.Boolean(metadata={"description": "The document concerns one person"})
    signatures = ma.fields.List(
        ma.fields.Enum(SignerRole, by_value=True), metadata={"description": "Roles that must sign"}
    )
    optional = ma.fields.List(
        ma.fields.Enum(SignerRole, by_value=True), metadata={"description": "Roles that may sign"}
    )
    guardian_if_minor = ma.fields.Boolean(
        metadata={"description": "The guardian must sign when the person is a minor"}
    )
    interpreter_if_needed = ma.fields.Boolean(
        metadata={"description": "The interpreter must sign when the person needs one"}
    )
    witness_if_attested = ma.fields.Boolean(
        metadata={"description": "The witness must sign when one attested the act recorded"}
    )
    generated = ma.fields.Boolean(
        metadata={"description": "The platform writes documents of this kind; none is created"}
    )
    rights_notice = ma.fields.Boolean(
        metadata={"description": "Drafts start with the rights notice, which stays first"}
    )
    signer_labels = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(LabelSchema),
        metadata={"description": "How this kind names each signer role on paper"},
    )


class HeaderFieldSchema(Schema):
    key = ma.fields.String()
    label = ma.fields.Nested(LabelSchema)
    source = ma.fields.String(
        allow_none=True, metadata={"description": "Prefilled from: " + ", ".join(sorted(SOURCES))}
    )
    required = ma.fields.Boolean(metadata={"description": "Must be filled before finalising"})


class QuestionSchema(Schema):
    id = ma.fields.String()
    topic = ma.fields.String()
    label = ma.fields.Nested(LabelSchema)
    prefill = ma.fields.Boolean(metadata={"description": "Part of every new draft"})


class SectionSpecSchema(Schema):
    key = ma.fields.String()
    label = ma.fields.Nested(LabelSchema)
    text = ma.fields.String(metadata={"description": "Initial text; may name {source}s"})
    locked = ma.fields.Boolean(metadata={"description": "The text cannot be edited"})
    required = ma.fields.Boolean(metadata={"description": "Must be written before finalising"})


class TemplateSchema(Schema):
    id = ma.fields.String()
    case_type = ma.fields.Enum(CaseType, by_value=True)
    kind = ma.fields.String()
    title = ma.fields.String()
    persons = ma.fields.List(
        ma.fields.Enum(PersonRole, by_value=True),
        metadata={"description": "Roles of the case persons a document is about"},
    )
    person_role_labels = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(LabelSchema)
    )
    header = ma.fields.List(ma.fields.Nested(HeaderFieldSchema))
    rights_notice = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Rights notice by person role (``default`` otherwise)"},
    )
    questions = ma.fields.List(ma.fields.Nested(QuestionSchema))
    sections = ma.fields.List(ma.fields.Nested(SectionSpecSchema))


class CatalogueSchema(Schema):
    signer_roles = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(LabelSchema))
    topics = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(LabelSchema))
    sources = ma.fields.List(
        ma.fields.String(), metadata={"description": "Names a ``{source}`` placeholder may use"}
    )
    kinds = ma.fields.List(ma.fields.Nested(KindSchema))
    templates = ma.fields.List(ma.fields.Nested(TemplateSchema))


# Documents


class DocumentCreateSchema(Schema):
    id = ma.fields.UUID(load_default=None, metadata={"description": "Client-generated id"})
    kind = ma.fields.String(required=True, validate=validate.OneOf(_kind_ids()))
    person_id = ma.fields.UUID(
        load_default=None, metadata={"description": "The case person the document is about"}
    )
    title = Text(load_default=None, validate=validate.Length(1, 200))
    person_is_minor = ma.fields.Boolean(
        load_default=None,
        metadata={"description": "Default: from the person's resident ID number, else false"},
    )
    needs_interpreter = ma.fields.Boolean(load_default=False)


class QAEntrySchema(Schema):
    id = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ENTRY_ID,
        metadata={"description": "The question bank id, or null for an own question"},
    )
    question = Text(required=True, validate=validate.Length(1, 4000))
    answer = Text(required=True, validate=validate.Length(0, 20_000))


class ItemSchema(Schema):
    name = Text(required=True, validate=validate.Length(1, 200))
    quantity = Text(required=True, validate=validate.Length(1, 40))
    features = Text(load_default="", validate=validate.Length(0, 1000))
    note = Text(load_default="", validate=validate.Length(0, 500))


class DocumentEditSchema(Schema):
    """Changes to a draft; each given field replaces the stored one.

    ``header`` and ``sections`` change only the keys they name; ``qa`` and
    ``items`` replace the whole list. A transcript's first entry must stay the
    rights notice, question unchanged.
    """

    title = Text(validate=validate.Length(1, 200))
    header = ma.fields.Dict(keys=ma.fields.String(), values=Text(validate=validate.Length(0, 500)))
    qa = ma.fields.List(ma.fields.Nested(QAEntrySchema), validate=validate.Length(1, 300))
    sections = ma.fields.Dict(
        keys=ma.fields.String(), values=Text(validate=validate.Length(0, 20_000))
    )
    items = ma.fields.List(ma.fields.Nested(ItemSchema), validate=validate.Length(0, 500))
    person_is_minor = ma.fields.Boolean()
    needs_interpreter = ma.fields.Boolean()


class SignatureSchema(Schema):
    id = ma.fields.UUID()
    document_id = ma.fields.UUID()
    role = ma.fields.Enum(SignerRole, by_value=True)
    signer_name = ma.fields.String()
    signer_user_id = ma.fields.UUID(allow_none=True)
    signer_id_number = ma.fields.String(
        attribute="masked_id_number", allow_none=True, metadata={"description": "Masked"}
    )
    signed_at = ma.fields.DateTime()
    received_at = ma.fields.DateTime()
    content_sha256 = ma.fields.String()
    image_sha256 = ma.fields.String()
    fingerprint_sha256 = ma.fields.String(allow_none=True)
    fingerprint_type = ma.fields.String(allow_none=True)
    strokes_sha256 = ma.fields.String()
    device_id = ma.fields.String()
    device_signature = ma.fields.String()
    submitted_by = ma.fields.UUID()


class DocumentSummarySchema(Schema):
    id = ma.fields.UUID()
    case_id = ma.fields.UUID()
    kind = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Enum(DocumentStatus, by_value=True)
    person_id = ma.fields.UUID(allow_none=True)
    content_sha256 = ma.fields.String(allow_none=True)
    required_signatures = ma.fields.List(ma.fields.Enum(SignerRole, by_value=True))
    missing_signatures = ma.fields.List(ma.fields.Enum(SignerRole, by_value=True))
    created_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    finalized_at = ma.fields.DateTime(allow_none=True)
    signed_at = ma.fields.DateTime(allow_none=True)
    version = ma.fields.Integer()


class DocumentSchema(DocumentSummarySchema):
    template = ma.fields.String()
    person_is_minor = ma.fields.Boolean()
    needs_interpreter = ma.fields.Boolean()
    needs_witness = ma.fields.Boolean(
        metadata={"description": "A witness attested the act recorded and must sign"}
    )
    content = ma.fields.Dict(
        metadata={
            "description": "kind, title, header and the body (qa, sections or items); "
            "holds the person's real identity data: the document is a legal record"
        }
    )
    finalized_by = ma.fields.UUID(allow_none=True)
    signatures = ma.fields.List(ma.fields.Nested(SignatureSchema))


class SignatureCreateSchema(Schema):
    """A signature over a finalised document, signed by the submitting device.

    The device signs ``shared.signing.canonical_form("signature", fields)``
    where ``fields`` is ``shared.templates.signature_fields(...)``::

        {"document_id": "<uuid>", "content_sha256": "<hex>", "signer_role": "party",
         "signer_name": "...", "signer_user_id": "<uuid>" | null,
         "signer_id_number": "..." | null,
         "signed_at": "<UTC instant, YYYY-MM-DDTHH:MM:SS.ffffff+00:00>",
         "image_sha256": "<hex of the PNG bytes>",
         "fingerprint_sha256": "<hex of the fingerprint bytes>" | null,
         "strokes_sha256": "<hex of the strokes as compact JSON>",
         "device_id": "<the device id>"}
    """

    id = ma.fields.UUID(load_default=None, metadata={"description": "Client-generated id"})
    signer_role = ma.fields.Enum(SignerRole, by_value=True, required=True)
    signer_name = Text(required=True, validate=validate.Length(1, 120))
    signer_user_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Required for officer and second_officer"}
    )
    signer_id_number = ma.fields.String(load_default=None, validate=ID_NUMBER)
    strokes = ma.fields.List(
        ma.fields.List(
            ma.fields.List(
                WholeNumber(validate=validate.Range(0, MAX_POINT_VALUE)),
                validate=validate.Length(3, 3),
                metadata={"description": "[x, y, t]: pixels, and milliseconds since the start"},
            ),
            validate=validate.Length(1, MAX_STROKE_POINTS),
        ),
        required=True,
        validate=validate.Length(1, MAX_STROKES),
        metadata={"description": "Pen strokes, each a list of points"},
    )
    image_png = ma.fields.String(
        required=True,
        validate=validate.Length(1, base64_length(SIGNATURE_IMAGE_MAX_BYTES)),
        metadata={"description": f"Base64 PNG, at most {SIGNATURE_IMAGE_MAX_BYTES} bytes"},
    )
    fingerprint_png = ma.fields.String(
        load_default=None,
        validate=validate.Length(1, base64_length(FINGERPRINT_MAX_BYTES)),
        metadata={"description": f"Base64 PNG or JPEG, at most {FINGERPRINT_MAX_BYTES} bytes"},
    )
    signed_at = ma.fields.AwareDateTime(required=True, validate=INSTANT)
    content_sha256 = ma.fields.String(
        required=True,
        validate=SHA256_HEX,
        metadata={"description": "The content hash the signer was shown"},
    )
    device_id = ma.fields.String(required=True, validate=validate.Regexp(DEVICE_ID_PATTERN.pattern))
    device_signature = ma.fields.String(
        required=True,
        validate=validate.Length(1, 128),
        metadata={"description": "Base64 Ed25519 signature over the fields above"},
    )


class VerifiedSignatureSchema(Schema):
    role = ma.fields.Enum(SignerRole, by_value=True)
    role_label = ma.fields.String()
    signer_name = ma.fields.String()
    signed_at = ma.fields.DateTime()
    covers_content = ma.fields.Boolean(
        metadata={"description": "Its content hash is the document's recorded hash"}
    )
    image_intact = ma.fields.Boolean(
        metadata={"description": "The stored images still have their recorded hashes"}
    )


class VerificationSchema(Schema):
    document_id = ma.fields.UUID()
    kind = ma.fields.String()
    title = ma.fields.String()
    case_number = ma.fields.String()
    status = ma.fields.Enum(DocumentStatus, by_value=True)
    content_sha256 = ma.fields.String(
        allow_none=True, metadata={"description": "Recorded when finalised"}
    )
    computed_sha256 = ma.fields.String(metadata={"description": "Of the content stored now"})
    matches = ma.fields.Boolean(metadata={"description": "The two hashes are equal"})
    valid = ma.fields.Boolean(
        metadata={"description": "Hashes match and every signature covers the content, intact"}
    )
    signatures = ma.fields.List(ma.fields.Nested(VerifiedSignatureSchema))
