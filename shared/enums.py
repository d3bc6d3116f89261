"""Enumerations shared by the backend, the mobile client and scripts."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OFFICER = "officer"
    LEGAL_OFFICER = "legal_officer"
    LEADER = "leader"
    CASE_MANAGER = "case_manager"
    ADMIN = "admin"


class UnitTier(StrEnum):
    CITY = "city"
    DISTRICT = "district"
    STATION = "station"


class CaseType(StrEnum):
    ADMINISTRATIVE = "administrative"
    CRIMINAL = "criminal"


class IncidentStatus(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    CLOSED_NOT_CASE = "closed_not_case"


class PersonRole(StrEnum):
    REPORTER = "reporter"
    VICTIM = "victim"
    SUSPECT = "suspect"
    WITNESS = "witness"
    GUARDIAN = "guardian"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    RETURNED = "returned"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    RETURNED = "returned"


class Decision(StrEnum):
    APPROVE = "approve"
    RETURN = "return"


class DocumentStatus(StrEnum):
    DRAFT = "draft"
    FINALIZED = "finalized"
    SIGNED = "signed"


class WarningStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class SignerRole(StrEnum):
    OFFICER = "officer"
    SECOND_OFFICER = "second_officer"
    PARTY = "party"
    WITNESS = "witness"
    INTERPRETER = "interpreter"
    GUARDIAN = "guardian"


CASE_READER_ROLES = frozenset({Role.OFFICER, Role.LEGAL_OFFICER, Role.LEADER, Role.CASE_MANAGER})
"""Roles that may read the case data of their units."""

IDENTITY_REVEALER_ROLES = frozenset({Role.OFFICER, Role.LEGAL_OFFICER, Role.LEADER})
"""Roles whose work needs persons' identity data; they reveal it with a stated reason."""
