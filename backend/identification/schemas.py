from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from backend.api import Schema, Text
from backend.cases.schemas import INSTANT
from backend.documents.schemas import (
    FINGERPRINT_MAX_BYTES,
    MAX_POINT_VALUE,
    MAX_STROKE_POINTS,
    MAX_STROKES,
    SHA256_HEX,
    SIGNATURE_IMAGE_MAX_BYTES,
    LabelSchema,
    WholeNumber,
    base64_length,
)
from backend.lifecycle import DEVICE_ID_PATTERN
from shared.identification import ANSWERS, OUTCOMES, load_rules


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


STEPS = ("waiting", "instructions", "lineup", "choice", "confidence", "record", "done")
MAX_MEMBERS = 40


def _written(maximum: int, **kwargs: object) -> Text:
    return Text(validate=[validate.Length(1, maximum), not_blank], **kwargs)


# The presiding investigators' side


class MemberCreateSchema(Schema):
    is_target = ma.fields.Boolean(required=True)
    person_id = ma.fields.UUID(
        load_default=None,
        metadata={
            "description": "A person of the case; the target of a person lineup is a suspect"
        },
    )
    description = _written(
        1000,
        required=True,
        metadata={"description": "Tells this member apart from every other (AR art. 104 check)"},
    )
    evidence_id = ma.fields.UUID(
        load_default=None,
        metadata={"description": "Photo lineups: a photo evidence item of the case, required"},
    )


class LineupCreateSchema(Schema):
    kind = ma.fields.String(required=True, validate=validate.OneOf(sorted(load_rules().kinds)))
    suspicion_reason = _written(
        4000, required=True, metadata={"description": "The reason to suspect the target"}
    )
    filler_criteria = _written(
        4000, required=True, metadata={"description": "How the fillers were chosen"}
    )
    members = ma.fields.List(
        ma.fields.Nested(MemberCreateSchema),
        required=True,
        validate=validate.Length(1, MAX_MEMBERS),
        metadata={
            "description": "Exactly one target; at least "
            + ", ".join(f"{k.id} {k.minimum}" for k in load_rules().kinds.values())
            + " members (CR art. 260, AR art. 103)"
        },
    )


class MemberSchema(Schema):
    id = ma.fields.UUID()
    is_target = ma.fields.Boolean()
    person_id = ma.fields.UUID(allow_none=True)
    evidence_id = ma.fields.UUID(allow_none=True)
    description = ma.fields.String()


class LineupSchema(Schema):
    id = ma.fields.UUID()
    session_id = ma.fields.UUID()
    kind = ma.fields.String()
    suspicion_reason = ma.fields.String()
    filler_criteria = ma.fields.String()
    created_by = ma.fields.UUID()
    created_at = ma.fields.DateTime()
    members = ma.fields.List(
        ma.fields.Nested(MemberSchema), metadata={"description": "As submitted, not as shown"}
    )


class InterviewSchema(Schema):
    description = _written(
        4000, required=True, metadata={"description": "The identifier's description of the target"}
    )
    viewing_conditions = _written(
        4000, required=True, metadata={"description": "How, when and where the target was seen"}
    )
    distance = _written(200, load_default=None)
    lighting = _written(200, load_default=None)
    duration = _written(200, load_default=None)
    prior_exposure = _written(
        4000,
        load_default=None,
        metadata={
            "description": "Whether and how the identifier saw the suspect or their image "
            "after the event (news, social media, a photo shown); flagged on the record"
        },
    )
    notes = _written(4000, load_default=None)


class AssignSchema(Schema):
    lineup_id = ma.fields.UUID(required=True)


class IdentifierSchema(Schema):
    participant_id = ma.fields.UUID()
    label = ma.fields.String()
    name = ma.fields.String()
    step = ma.fields.String(validate=validate.OneOf(STEPS))
    lineup_id = ma.fields.UUID(allow_none=True)
    repeat_identification = ma.fields.Boolean(
        metadata={"description": "Shown a lineup with the same target before (flagged)"}
    )
    refused_reuse = ma.fields.Integer(
        metadata={"description": "Lineups refused for reusing fillers (AR art. 104)"}
    )
    record_document_id = ma.fields.UUID(allow_none=True)


# The identifier's side (participant token)


class InstructionsSchema(Schema):
    acknowledged = ma.fields.Boolean(required=True, validate=validate.Equal(True))


class IdentifierStateSchema(Schema):
    step = ma.fields.String(
        metadata={
            "description": " | ".join(STEPS) + "; waiting until the identification "
            "is in progress, the interview recorded and a lineup assigned"
        }
    )
    presentation = ma.fields.String(metadata={"description": "simultaneous | sequential"})
    lineup_kind = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    instructions = ma.fields.Nested(
        LabelSchema, allow_none=True, metadata={"description": "Once a lineup is assigned"}
    )


class ShownMemberSchema(Schema):
    position = ma.fields.Integer()
    has_image = ma.fields.Boolean()
    label = ma.fields.String()


class MembersSchema(Schema):
    members = ma.fields.List(
        ma.fields.Nested(ShownMemberSchema),
        metadata={"description": "Simultaneous: all; sequential: the member to answer now"},
    )
    remaining = ma.fields.Integer(
        metadata={"description": "Members not yet answered, the one shown included"}
    )


class ResponseSchema(Schema):
    position = WholeNumber(required=True, validate=validate.Range(1, MAX_MEMBERS))
    answer = ma.fields.String(required=True, validate=validate.OneOf(ANSWERS))


class ChoiceSchema(Schema):
    outcome = ma.fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    position = WholeNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(1, MAX_MEMBERS),
        metadata={"description": "The member chosen (selected only)"},
    )


class ConfidenceSchema(Schema):
    statement = _written(
        2000, required=True, metadata={"description": "In the identifier's own words"}
    )
    scale = WholeNumber(required=True, validate=validate.Range(0, 100))


class RecordViewSchema(Schema):
    available = ma.fields.Boolean()
    document_id = ma.fields.UUID(allow_none=True)
    content_sha256 = ma.fields.String(allow_none=True)
    lines = ma.fields.List(ma.fields.String())


class PartySignatureSchema(Schema):
    """The identifier's signature as the party, signed by the tablet as in
    ``backend.documents.schemas.SignatureCreateSchema`` with ``signer_role`` party,
    ``signer_name`` the participant's name and no user or ID number."""

    image_png = ma.fields.String(
        required=True, validate=validate.Length(1, base64_length(SIGNATURE_IMAGE_MAX_BYTES))
    )
    strokes = ma.fields.List(
        ma.fields.List(
            ma.fields.List(
                WholeNumber(validate=validate.Range(0, MAX_POINT_VALUE)),
                validate=validate.Length(3, 3),
            ),
            validate=validate.Length(1, MAX_STROKE_POINTS),
        ),
        required=True,
        validate=validate.Length(1, MAX_STROKES),
    )
    signed_at = ma.fields.AwareDateTime(required=True, validate=INSTANT)
    content_sha256 = ma.fields.String(required=True, validate=SHA256_HEX)
    device_id = ma.fields.String(required=True, validate=validate.Regexp(DEVICE_ID_PATTERN.pattern))
    device_signature = ma.fields.String(required=True, validate=validate.Length(1, 128))
    fingerprint_png = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, base64_length(FINGERPRINT_MAX_BYTES)),
    )


class ProgressEntrySchema(Schema):
    participant_id = ma.fields.UUID()
    label = ma.fields.String()
    step = ma.fields.String()


class ProgressSchema(Schema):
    identifiers = ma.fields.List(ma.fields.Nested(ProgressEntrySchema))
