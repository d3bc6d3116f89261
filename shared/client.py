"""The typed Python client of the Fieldcase API, for the mobile app, scripts and tests.

Results are the API's JSON as ``TypedDict``s: ids are UUID strings and times ISO
8601 strings. Errors are problem details (RFC 9457) raised as ``ApiError`` or
one of its subclasses; network failures stay ``requests`` exceptions, so an
outbox can tell "try again later" from "the server said no".

Every POST that creates or changes data carries an ``Idempotency-Key``: a fresh
uuid4 unless the caller passes ``idempotency_key=``. Resending a request with
its key replays the stored response instead of acting twice. Request bodies
are serialised canonically (sorted keys), so a request rebuilt from an outbox
matches its first sending. Client-chosen ids (``incident_id``, ``case_id``,
``person_id``) make resends harmless even without the key.

A workflow step needs the case's ETag in ``If-Match``; ``request_step`` reads
it when not given and returns the case's new ETag with the outcome.

The client keeps the access and refresh tokens. When a request fails because
the access token has expired, it refreshes the pair once and repeats the
request; ``on_tokens`` hears of every new pair (and of ``None`` when the
sign-in ends), so the app can persist them and restore them with ``set_tokens``.

Files travel with tus (``upload_file``, through ``tuspy``) in chunks, each
sent with the access token current at that moment; an upload's URL is all it
takes to resume it after a cut connection or a restart of the app. A device
signs evidence and signatures with its enrolled Ed25519 key: the client builds
the signed fields with the same functions as the server (``shared.evidence``,
``shared.templates``). Documents, like cases, change only with their ETag in
``If-Match``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, NoReturn, NotRequired, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from shared import signing
from shared.enums import (
    ApprovalStatus,
    CaseType,
    Decision,
    IncidentStatus,
    PersonRole,
    Role,
    SignerRole,
    UnitTier,
    WarningStatus,
)
from shared.evidence import EVIDENCE_PURPOSE, evidence_fields
from shared.templates import SIGNATURE_PURPOSE, content_sha256, signature_fields

API_PREFIX = "/api/v1"
PROBLEM_TYPE_PREFIX = "urn:fieldcase:problem:"
TOKEN_EXPIRED = PROBLEM_TYPE_PREFIX + "token-expired"
DEFAULT_TIMEOUT = 30.0
ACCEPT = "application/json, application/problem+json"
ANY_CONTENT = {"Accept": "*/*"}
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
DOWNLOAD_BLOCK_SIZE = 1024 * 1024

UUIDLike = uuid.UUID | str
Timeout = float | tuple[float, float]
EvidenceKind = Literal["photo", "audio", "video", "document", "other"]
CustodyEventName = Literal["exported", "transferred", "stored", "returned"]
Disposition = Literal["inline", "attachment"]
Strokes = Sequence[Sequence[Sequence[int]]]
"""Pen strokes: each a list of ``[x, y, t]`` points (pixels, and milliseconds since the start)."""

T = TypeVar("T")


# Resources


class Label(TypedDict):
    zh: str
    en: str


class Unit(TypedDict):
    id: str
    code: str
    name: str
    name_en: str | None
    tier: str
    parent_id: str | None


class User(TypedDict):
    id: str
    username: str
    display_name: str
    unit_id: str
    roles: list[str]
    active: bool
    created_at: str


class Me(User):
    unit: Unit


class TokenPair(TypedDict):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: Me


class Reporter(TypedDict):
    name: str
    phone: NotRequired[str]
    id_number: NotRequired[str]


class Incident(TypedDict):
    id: str
    unit_id: str
    occurred_at: str
    place: str
    latitude: float | None
    longitude: float | None
    source: str
    category: str
    summary: str
    reporter_name: str | None
    status: str
    closed_reason: str | None
    case_id: str | None
    created_by: str
    created_at: str


class IncidentPage(TypedDict):
    items: list[Incident]
    next_cursor: str | None


class Case(TypedDict):
    id: str
    number: str
    unit_id: str
    case_type: str
    status: str
    is_open: bool
    title: str
    summary: str
    handler_id: str
    incident_id: str | None
    pending_request_id: str | None
    due_at: str | None
    created_at: str
    updated_at: str
    version: int


class CasePage(TypedDict):
    items: list[Case]
    next_cursor: str | None


class CaseWithEtag(NamedTuple):
    """A case and its ETag, the value to send in ``If-Match`` when requesting a step."""

    case: Case
    etag: str


class CaseFilters(TypedDict, total=False):
    """Filters of ``list_cases`` and ``iter_cases``; a list of statuses matches any."""

    status: str | Sequence[str]
    case_type: CaseType | str
    unit_id: UUIDLike
    handler_id: UUIDLike
    open: bool
    overdue: bool
    q: str


class Event(TypedDict):
    seq: int
    type: str
    at: str
    actor_id: str
    action: str | None
    from_state: str | None
    to_state: str | None
    request_id: str | None
    comment: str | None
    payload: dict[str, Any]


class Person(TypedDict):
    id: str
    case_id: str
    role: str
    name: str
    id_number: str | None
    phone: str | None
    address: str | None
    masked: bool
    created_at: str


class StepRequest(TypedDict):
    id: str
    case_id: str
    action: str
    from_state: str
    to_state: str
    requested_by: str
    requested_at: str
    comment: str | None
    payload: dict[str, Any]
    status: str
    stage: int


class StepOutcome(TypedDict):
    """The result of a step or a decision; ``etag`` is the case's new ETag (response header)."""

    outcome: Literal["applied", "pending", "returned"]
    case: Case
    request: StepRequest | None
    etag: str


class Approval(TypedDict):
    id: str
    request_id: str
    case_id: str
    unit_id: str
    stage: int
    role: str
    status: str
    created_at: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None
    request: StepRequest
    case: Case


class ApprovalPage(TypedDict):
    items: list[Approval]
    next_cursor: str | None


class InputSpec(TypedDict):
    name: str
    type: str
    required: bool
    choices: list[str]
    label: Label


class ApprovalStageSpec(TypedDict):
    role: str
    state: str | None


ActionSpec = TypedDict(
    "ActionSpec",
    {
        "name": str,
        "label": Label,
        "from": list[str],
        "to": str,
        "roles": list[str],
        "approvals": list[ApprovalStageSpec],
        "inputs": list[InputSpec],
        "requires_signed": list[str],
    },
)


class CaseActionSpec(ActionSpec):
    """An action offered on a case; ``missing_signed``: the required kinds not yet signed."""

    missing_signed: list[str]


class StateSpec(TypedDict):
    name: str
    label: Label
    terminal: bool
    deadline_hours: int | None
    basis: str | None


class WorkflowSpec(TypedDict):
    case_type: str
    label: Label
    initial: str
    states: list[StateSpec]
    actions: list[ActionSpec]


class Device(TypedDict):
    id: str
    device_id: str
    user_id: str
    unit_id: str
    name: str
    public_key: str
    active: bool
    enrolled_at: str
    revoked_at: str | None
    revoked_reason: str | None


class UnitChanges(TypedDict, total=False):
    name: str
    name_en: str | None


class UserChanges(TypedDict, total=False):
    display_name: str
    password: str
    unit_id: UUIDLike
    roles: Sequence[Role | str]
    active: bool


class UploadStatus(NamedTuple):
    """How far an upload has come: it resumes from ``offset``."""

    offset: int
    length: int


class UploadProgress(NamedTuple):
    """Where ``upload_file`` stands; keep ``url`` to resume the upload later."""

    url: str
    offset: int
    length: int


class Disposal(TypedDict):
    id: str
    evidence_id: str
    reason: str
    requested_by: str
    requested_at: str
    status: str
    decided_by: str | None
    decided_at: str | None
    comment: str | None


class Evidence(TypedDict):
    """An item of evidence; ``content_type`` is detected from its bytes."""

    id: str
    case_id: str
    kind: str
    sha256: str
    size: int
    content_type: str
    filename: str
    upload_id: str
    captured_at: str
    place: str
    latitude: str | None
    longitude: str | None
    description: str
    device_id: str
    signed_fields: dict[str, Any]
    device_signature: str
    status: str
    disposed_at: str | None
    created_by: str
    created_at: str
    disposals: list[Disposal]


class EvidenceFile(NamedTuple):
    """A file ``download_evidence`` wrote, its SHA-256 checked against the server's ETag."""

    path: Path
    size: int
    sha256: str
    content_type: str


class CustodyEvent(TypedDict):
    id: int
    evidence_id: str
    event: str
    at: str
    actor_id: str
    actor_name: str
    device_id: str | None
    place: str | None
    purpose: str | None
    location: str | None
    recipient: str | None
    details: dict[str, Any]


class EvidenceAlert(TypedDict):
    id: str
    evidence_id: str
    case_id: str
    sha256: str
    kind: str
    found_at: str
    detail: str
    resolved: bool
    resolved_at: str | None


class DocumentKindSpec(TypedDict):
    id: str
    label: Label
    body: str
    case_types: list[str]
    person: bool
    signatures: list[str]
    optional: list[str]
    guardian_if_minor: bool
    interpreter_if_needed: bool
    witness_if_attested: bool
    generated: bool
    rights_notice: bool
    signer_labels: dict[str, Label]


class HeaderFieldSpec(TypedDict):
    key: str
    label: Label
    source: str | None
    required: bool


class QuestionSpec(TypedDict):
    id: str
    topic: str
    label: Label
    prefill: bool


class SectionSpec(TypedDict):
    key: str
    label: Label
    text: str
    locked: bool
    required: bool


class DocumentTemplateSpec(TypedDict):
    id: str
    case_type: str
    kind: str
    title: str
    persons: list[str]
    person_role_labels: dict[str, Label]
    header: list[HeaderFieldSpec]
    rights_notice: dict[str, str]
    questions: list[QuestionSpec]
    sections: list[SectionSpec]


class DocumentCatalogue(TypedDict):
    signer_roles: dict[str, Label]
    topics: dict[str, Label]
    sources: list[str]
    kinds: list[DocumentKindSpec]
    templates: list[DocumentTemplateSpec]


class Signature(TypedDict):
    id: str
    document_id: str
    role: str
    signer_name: str
    signer_user_id: str | None
    signer_id_number: str | None
    signed_at: str
    received_at: str
    content_sha256: str
    image_sha256: str
    fingerprint_sha256: str | None
    fingerprint_type: str | None
    strokes_sha256: str
    device_id: str
    device_signature: str
    submitted_by: str


class DocumentSummary(TypedDict):
    id: str
    case_id: str
    kind: str
    title: str
    status: str
    person_id: str | None
    content_sha256: str | None
    required_signatures: list[str]
    missing_signatures: list[str]
    created_by: str
    created_at: str
    updated_at: str
    finalized_at: str | None
    signed_at: str | None
    version: int


class Document(DocumentSummary):
    """A document with its content (kind, title, header and body: ``qa``, ``sections``
    or ``items``), which holds the person's real identity data."""

    template: str
    person_is_minor: bool
    needs_interpreter: bool
    needs_witness: bool
    content: dict[str, Any]
    finalized_by: str | None
    signatures: list[Signature]


class DocumentWithEtag(NamedTuple):
    """A document and its ETag, the value to send in ``If-Match`` when changing it."""

    document: Document
    etag: str


class QAEntry(TypedDict):
    """A question and its answer; ``id`` names a question of the bank, ``None`` an own one."""

    question: str
    answer: str
    id: NotRequired[str | None]


class DocumentItem(TypedDict):
    name: str
    quantity: str
    features: NotRequired[str]
    note: NotRequired[str]


class DocumentChanges(TypedDict, total=False):
    """Changes to a draft: ``header`` and ``sections`` change the keys they name,
    ``qa`` and ``items`` replace the whole list."""

    title: str
    header: dict[str, str]
    qa: list[QAEntry]
    sections: dict[str, str]
    items: list[DocumentItem]
    person_is_minor: bool
    needs_interpreter: bool


class VerifiedSignature(TypedDict):
    role: str
    role_label: str
    signer_name: str
    signed_at: str
    covers_content: bool
    image_intact: bool


class Verification(TypedDict):
    """Whether the stored content still has its recorded hash and every signature covers it."""

    document_id: str
    kind: str
    title: str
    case_number: str
    status: str
    content_sha256: str | None
    computed_sha256: str
    matches: bool
    valid: bool
    signatures: list[VerifiedSignature]


class CaseWarning(TypedDict):
    """An early warning (预警); ``message`` and ``rule_name`` are rendered in zh and en."""

    id: str
    rule_id: str
    case_id: str
    case_number: str
    unit_id: str
    handler_id: str
    key: str
    kind: str
    severity: str
    due_at: str | None
    status: str
    level: int
    message: dict[str, str]
    rule_name: dict[str, str]
    unverified: Any
    created_at: str
    changed_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    resolved_by: str | None
    resolved_at: str | None
    resolution_note: str | None


class WarningPage(TypedDict):
    items: list[CaseWarning]
    next_cursor: str | None


class FeedStep(TypedDict):
    case_number: str
    action: str | None
    comment: str | None
    seq: int


class FeedApproval(TypedDict):
    id: str
    action: str
    role: str
    stage: int


class FeedItem(TypedDict):
    """A change for the caller: ``type`` is warning, step_returned or approval, and the
    item carries the field of that name (``step`` for a returned step)."""

    type: str
    id: str
    at: str
    case_id: str
    warning: NotRequired[CaseWarning]
    step: NotRequired[FeedStep]
    approval: NotRequired[FeedApproval]


class FeedPage(TypedDict):
    items: list[FeedItem]
    next_cursor: str | None
    more: bool


# Errors


class ApiError(Exception):
    """The API answered with an error; ``problem`` holds its problem details."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(f"{status} {self.title}: {self.detail or self.type}")

    @property
    def type(self) -> str:
        return str(self.problem.get("type", "about:blank"))

    @property
    def title(self) -> str:
        return str(self.problem.get("title", ""))

    @property
    def detail(self) -> str | None:
        return self.problem.get("detail")

    @property
    def request_id(self) -> str | None:
        return self.problem.get("request_id")


class AuthError(ApiError):
    """401: not signed in, wrong credentials, or the sign-in has ended."""


class ForbiddenError(ApiError):
    """403: your role does not allow this."""


class NotFoundError(ApiError):
    """404: no such resource, or not one you may see."""


class ConflictError(ApiError):
    """409: the resource's state does not allow this (or the request is still in flight)."""


class PreconditionFailed(ApiError):
    """412: the case changed since its ETag was read; ``current_etag`` is its ETag now."""

    @property
    def current_etag(self) -> str | None:
        return self.problem.get("current_etag")


class ValidationError(ApiError):
    """422: the request did not validate; ``errors`` maps locations and fields to messages."""

    @property
    def errors(self) -> dict[str, Any]:
        return self.problem.get("errors") or {}


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` is the wait in seconds, when the server says."""

    def __init__(
        self, status: int, problem: Mapping[str, Any], retry_after: int | None = None
    ) -> None:
        super().__init__(status, problem)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed; the request may be tried again later."""


class GoneError(ApiError):
    """410: gone for good: an upload that expired unfinished (start a new one), or
    evidence that was disposed of."""


class PayloadTooLarge(ApiError):
    """413: past a limit on the size of a file, a chunk or a case's evidence."""


class ChecksumMismatch(ApiError):
    """460 (tus): a chunk arrived other than it was sent; nothing of it was kept."""


class ContentMismatch(Exception):
    """Downloaded bytes do not have the SHA-256 the server named for them; nothing was kept."""


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    422: ValidationError,
    460: ChecksumMismatch,
}


def _problem(status: int, content: bytes | None, reason: str | None = None) -> dict[str, Any]:
    """The problem details of an error answer's body, or a plain one for another body."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = reason or ""
    return {"type": "about:blank", "title": title, "status": status}


def _problem_of(response: requests.Response) -> dict[str, Any]:
    return _problem(response.status_code, response.content, response.reason)


def _retry_after(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error(status: int, problem: dict[str, Any], retry_after: str | None = None) -> ApiError:
    """The ``ApiError`` subclass for an error answer."""
    if status == 429:
        return RateLimited(status, problem, _retry_after(retry_after))
    if status >= 500:
        return ServerError(status, problem)
    return _ERRORS_BY_STATUS.get(status, ApiError)(status, problem)


def _error_from_response(response: requests.Response) -> ApiError:
    return _error(response.status_code, _problem_of(response), response.headers.get("Retry-After"))


def _is_expired_tus(error: TusCommunicationError) -> bool:
    return error.status_code == HTTPStatus.UNAUTHORIZED and (
        _problem(error.status_code, error.response_content).get("type") == TOKEN_EXPIRED
    )


def _raise_tus_failure(error: TusCommunicationError) -> NoReturn:
    """Raise what a failed tuspy request means: an ``ApiError`` for an error answer,
    the ``requests`` exception of a network failure, else tuspy's own error."""
    status = error.status_code
    if status is not None and status >= 400:
        raise _error(status, _problem(status, error.response_content)) from error
    if status is None and isinstance(error.__context__, requests.RequestException):
        raise error.__context__ from None
    raise error


# Encoding


def _json_default(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(body: Mapping[str, Any]) -> bytes:
    """The canonical JSON of a request body: the same data always gives the same bytes."""
    return json.dumps(
        body, default=_json_default, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


def _query(params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[name] = "true" if value else "false"
        elif isinstance(value, str | uuid.UUID | int):
            query[name] = str(value)
        else:
            query[name] = [str(item) for item in value]
    return query


def _id(value: UUIDLike) -> str:
    """A resource id for a URL path; refuses anything that is not a UUID."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}


# The client


class FieldcaseClient:
    """A signed-in session with the Fieldcase API at ``base_url`` (the server's root URL).

    Safe to share between threads: concurrent requests that find the access
    token expired refresh it once between them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        device_id: str | None = None,
        on_tokens: Callable[[TokenPair | None], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.device_id = device_id
        self._on_tokens = on_tokens
        self._owns_session = session is None
        self._session = session or requests.Session()
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._token_lock = threading.RLock()

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FieldcaseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Tokens and sign-in

    @property
    def access_token(self) -> str | None:
        return self._access_token

    @property
    def refresh_token(self) -> str | None:
        return self._refresh_token

    def set_tokens(self, access_token: str | None, refresh_token: str | None) -> None:
        """Use tokens kept from an earlier run (``on_tokens`` is not called)."""
        with self._token_lock:
            self._access_token, self._refresh_token = access_token, refresh_token

    def _keep(self, pair: TokenPair | None) -> None:
        with self._token_lock:
            if pair is None:
                self._access_token = self._refresh_token = None
            else:
                self._access_token, self._refresh_token = (
                    pair["access_token"],
                    pair["refresh_token"],
                )
        if self._on_tokens is not None:
            self._on_tokens(pair)

    def login(self, username: str, password: str) -> TokenPair:
        body = _compact({"username": username, "password": password, "device_id": self.device_id})
        pair: TokenPair = self._request(
            "POST", "/auth/login", body=body, authenticated=False
        ).json()
        self._keep(pair)
        return pair

    def refresh(self) -> TokenPair:
        """Exchange the refresh token for a new pair; a rejected one ends the sign-in."""
        with self._token_lock:
            if self._refresh_token is None:
                raise RuntimeError("Not signed in: there is no refresh token.")
            try:
                response = self._request(
                    "POST",
                    "/auth/refresh",
                    body={"refresh_token": self._refresh_token},
                    authenticated=False,
                )
            except AuthError:
                self._keep(None)
                raise
            pair: TokenPair = response.json()
            self._keep(pair)
            return pair

    def logout(self) -> None:
        """End the sign-in on the server; the tokens are forgotten even if that fails."""
        try:
            self._request("POST", "/auth/logout")
        finally:
            self._keep(None)

    def me(self) -> Me:
        return self._request("GET", "/me").json()

    # Transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        """Send one API request; raise ``ApiError`` for an error answer.

        ``path`` is below the API's prefix, or an absolute URL the API gave (an
        upload's). A 401 for an expired access token refreshes the tokens and
        repeats the request once. With ``stream`` the body is read as it is used.
        """
        url = (
            path if path.startswith(("http://", "https://")) else self.base_url + API_PREFIX + path
        )
        fixed = {"Accept": ACCEPT, **(headers or {})}
        data = None if body is None else _encode(body)
        if data is not None:
            fixed["Content-Type"] = "application/json"
        if self.device_id:
            fixed["X-Device-Id"] = self.device_id

        def send(token: str | None) -> requests.Response:
            sent = dict(fixed)
            if authenticated and token:
                sent["Authorization"] = f"Bearer {token}"
            return self._session.request(
                method,
                url,
                params=_query(params or {}),
                data=data,
                headers=sent,
                timeout=self.timeout,
                stream=stream,
            )

        token = self._access_token
        response = send(token)
        if authenticated and _is_expired_token(response) and self._refresh_token:
            response.close()
            response = send(self._fresh_token(token))
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

    def _fresh_token(self, expired: str | None) -> str | None:
        """The access token to use instead of ``expired``: threads that find the same
        token expired refresh the pair once between them."""
        with self._token_lock:
            if self._access_token == expired:
                self.refresh()
            return self._access_token

    def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        idempotency_key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """A POST that changes data: always with an ``Idempotency-Key``."""
        key = idempotency_key or str(uuid.uuid4())
        return self._request(
            "POST", path, body=body, headers={**(headers or {}), "Idempotency-Key": key}
        )

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            page = self._request("GET", path, params={**params, "cursor": cursor}).json()
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    # Organisation (units and users; changes need the admin role)

    def list_units(self) -> list[Unit]:
        return self._request("GET", "/units").json()

    def get_unit(self, unit_id: UUIDLike) -> Unit:
        return self._request("GET", f"/units/{_id(unit_id)}").json()

    def create_unit(
        self,
        *,
        code: str,
        name: str,
        tier: UnitTier | str,
        parent_id: UUIDLike,
        name_en: str | None = None,
        unit_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> Unit:
        body = {
            "id": unit_id,
            "code": code,
            "name": name,
            "name_en": name_en,
            "tier": tier,
            "parent_id": parent_id,
        }
        return self._post("/units", _compact(body), idempotency_key).json()

    def update_unit(self, unit_id: UUIDLike, **changes: Unpack[UnitChanges]) -> Unit:
        return self._request("PATCH", f"/units/{_id(unit_id)}", body=changes).json()

    def list_users(self, *, unit_id: UUIDLike | None = None) -> list[User]:
        return self._request("GET", "/users", params={"unit_id": unit_id}).json()

    def get_user(self, user_id: UUIDLike) -> User:
        return self._request("GET", f"/users/{_id(user_id)}").json()

    def create_user(
        self,
        *,
        username: str,
        display_name: str,
        password: str,
        unit_id: UUIDLike,
        roles: Sequence[Role | str],
        idempotency_key: str | None = None,
    ) -> User:
        body = {
            "username": username,
            "display_name": display_name,
            "password": password,
            "unit_id": unit_id,
            "roles": list(roles),
        }
        return self._post("/users", body, idempotency_key).json()

    def update_user(self, user_id: UUIDLike, **changes: Unpack[UserChanges]) -> User:
        return self._request("PATCH", f"/users/{_id(user_id)}", body=changes).json()

    # Incidents

    def create_incident(
        self,
        *,
        occurred_at: datetime,
        place: str,
        category: str,
        summary: str,
        source: Literal["dispatch", "walk_in", "patrol"] | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        reporter: Reporter | None = None,
        incident_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> Incident:
        """File a report; with ``incident_id`` a resend returns the incident already filed."""
        body = {
            "id": incident_id,
            "occurred_at": occurred_at,
            "place": place,
            "category": category,
            "summary": summary,
            "source": source,
            "latitude": latitude,
            "longitude": longitude,
            "reporter": reporter,
        }
        return self._post("/incidents", _compact(body), idempotency_key).json()

    def list_incidents(
        self,
        *,
        status: IncidentStatus | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> IncidentPage:
        params = {"status": status, "limit": limit, "cursor": cursor}
        return self._request("GET", "/incidents", params=params).json()

    def iter_incidents(
        self, *, status: IncidentStatus | str | None = None, limit: int | None = None
    ) -> Iterator[Incident]:
        """Every incident you may see, newest first, fetched ``limit`` at a time."""
        return self._pages("/incidents", {"status": status, "limit": limit})

    def get_incident(self, incident_id: UUIDLike) -> Incident:
        return self._request("GET", f"/incidents/{_id(incident_id)}").json()

    def accept_incident(
        self,
        incident_id: UUIDLike,
        *,
        case_type: CaseType | str,
        title: str,
        case_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> CaseWithEtag:
        """Register the incident as a case (受案); with ``case_id`` a resend is harmless."""
        body = _compact({"case_type": case_type, "title": title, "case_id": case_id})
        response = self._post(f"/incidents/{_id(incident_id)}/accept", body, idempotency_key)
        return CaseWithEtag(response.json(), response.headers["ETag"])

    def close_incident(
        self, incident_id: UUIDLike, reason: str, *, idempotency_key: str | None = None
    ) -> Incident:
        """Close the incident as not a case."""
        path = f"/incidents/{_id(incident_id)}/close"
        return self._post(path, {"reason": reason}, idempotency_key).json()

    # Cases

    def list_cases(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[CaseFilters],
    ) -> CasePage:
        params = {**filters, "limit": limit, "cursor": cursor}
        return self._request("GET", "/cases", params=params).json()

    def iter_cases(
        self, *, limit: int | None = None, **filters: Unpack[CaseFilters]
    ) -> Iterator[Case]:
        """Every matching case, newest first, fetched ``limit`` at a time."""
        return self._pages("/cases", {**filters, "limit": limit})

    def get_case(self, case_id: UUIDLike) -> CaseWithEtag:
        response = self._request("GET", f"/cases/{_id(case_id)}")
        return CaseWithEtag(response.json(), response.headers["ETag"])

    def get_case_if_changed(self, case_id: UUIDLike, etag: str) -> CaseWithEtag | None:
        """The case if its ETag is no longer ``etag``; ``None`` if it has not changed."""
        response = self._request("GET", f"/cases/{_id(case_id)}", headers={"If-None-Match": etag})
        if response.status_code == HTTPStatus.NOT_MODIFIED:
            return None
        return CaseWithEtag(response.json(), response.headers["ETag"])

    def list_events(
        self, case_id: UUIDLike, *, after: int = 0, limit: int | None = None
    ) -> list[Event]:
        """The case history, oldest first, from the event after sequence number ``after``."""
        params = {"after": after, "limit": limit}
        return self._request("GET", f"/cases/{_id(case_id)}/events", params=params).json()

    def list_persons(self, case_id: UUIDLike) -> list[Person]:
        """Persons in the case, identity data masked."""
        return self._request("GET", f"/cases/{_id(case_id)}/persons").json()

    def add_person(
        self,
        case_id: UUIDLike,
        *,
        role: PersonRole | str,
        name: str,
        id_number: str | None = None,
        phone: str | None = None,
        address: str | None = None,
        person_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> Person:
        """Add a person; with ``person_id`` a resend returns the person already added."""
        body = {
            "id": person_id,
            "role": role,
            "name": name,
            "id_number": id_number,
            "phone": phone,
            "address": address,
        }
        return self._post(f"/cases/{_id(case_id)}/persons", _compact(body), idempotency_key).json()

    def reveal_person(self, case_id: UUIDLike, person_id: UUIDLike, reason: str) -> Person:
        """A person's full identity data; the reason goes into the audit trail.

        Sent without an ``Idempotency-Key``: it changes nothing, and a stored
        response would keep the identity data.
        """
        path = f"/cases/{_id(case_id)}/persons/{_id(person_id)}/reveal"
        return self._request("POST", path, body={"reason": reason}).json()

    # Workflows and approvals

    def list_workflows(self) -> list[WorkflowSpec]:
        return self._request("GET", "/workflows").json()

    def list_actions(self, case_id: UUIDLike) -> list[CaseActionSpec]:
        """The steps you may request on the case now."""
        return self._request("GET", f"/cases/{_id(case_id)}/actions").json()

    def request_step(
        self,
        case_id: UUIDLike,
        action: str,
        payload: Mapping[str, Any] | None = None,
        comment: str | None = None,
        etag: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> StepOutcome:
        """Request a workflow step with ``If-Match: etag`` (read from the case when ``None``).

        The outcome is ``applied`` or ``pending`` (waiting for approval); a stale
        ``etag`` raises ``PreconditionFailed``.
        """
        if etag is None:
            etag = self.get_case(case_id).etag
        body = {"action": action, "comment": comment, "payload": dict(payload or {})}
        path = f"/cases/{_id(case_id)}/transitions"
        return _outcome(self._post(path, body, idempotency_key, {"If-Match": etag}))

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ApprovalPage:
        params = {"status": status, "limit": limit, "cursor": cursor}
        return self._request("GET", "/approvals", params=params).json()

    def iter_approvals(
        self, *, status: ApprovalStatus | str | None = None, limit: int | None = None
    ) -> Iterator[Approval]:
        """Approvals for your roles in your units, newest first, fetched ``limit`` at a time."""
        return self._pages("/approvals", {"status": status, "limit": limit})

    def get_approval(self, approval_id: UUIDLike) -> Approval:
        return self._request("GET", f"/approvals/{_id(approval_id)}").json()

    def decide(
        self,
        approval_id: UUIDLike,
        decision: Decision | Literal["approve", "return"],
        comment: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> StepOutcome:
        """Approve, or return the step to its handler (a return needs a comment)."""
        body = {"decision": decision, "comment": comment}
        path = f"/approvals/{_id(approval_id)}/decision"
        return _outcome(self._post(path, body, idempotency_key))

    # Devices

    def enroll_device(
        self, *, device_id: str, name: str, public_key: str, idempotency_key: str | None = None
    ) -> Device:
        """Enrol this device's Ed25519 public key (base64 of the raw 32 bytes); resends are safe."""
        body = {"device_id": device_id, "name": name, "public_key": public_key}
        return self._post("/devices", body, idempotency_key).json()

    def list_devices(self) -> list[Device]:
        """Your devices (administrators: also those of their units)."""
        return self._request("GET", "/devices").json()

    def get_device(self, device_pk: UUIDLike) -> Device:
        return self._request("GET", f"/devices/{_id(device_pk)}").json()

    def revoke_device(
        self, device_pk: UUIDLike, reason: str, *, idempotency_key: str | None = None
    ) -> Device:
        """Revoke a device of your units (administrators); its submissions are refused."""
        path = f"/devices/{_id(device_pk)}/revoke"
        return self._post(path, {"reason": reason}, idempotency_key).json()

    # Uploads (tus)

    def _tus_headers(self, token: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.device_id:
            headers["X-Device-Id"] = self.device_id
        return headers

    def _tus(self, tus_client: tus.TusClient, send: Callable[[], T]) -> T:
        """One request that tuspy sends, with the access token current now; a 401
        for an expired token refreshes the tokens and sends it once more."""
        token = self._access_token
        tus_client.set_headers(self._tus_headers(token))
        try:
            return send()
        except TusCommunicationError as error:
            if not (_is_expired_tus(error) and self._refresh_token):
                _raise_tus_failure(error)
        tus_client.set_headers(self._tus_headers(self._fresh_token(token)))
        try:
            return send()
        except TusCommunicationError as error:
            _raise_tus_failure(error)

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        case_id: UUIDLike,
        filename: str | None = None,
        chunk_size: int = UPLOAD_CHUNK_SIZE,
        url: str | None = None,
        on_progress: Callable[[UploadProgress], None] | None = None,
    ) -> str:
        """Upload a file for the case with tus; the upload's URL (``upload_id_of`` has its id).

        Without ``url`` a new upload is created; with the URL of an unfinished
        upload of the same file it resumes from the offset the server holds.
        ``on_progress`` hears first when the upload is created or found, before
        any bytes go (an outbox keeps ``progress.url`` then, to resume after a
        restart), then after each chunk. Each chunk carries its SHA-1
        (``Upload-Checksum``): a damaged one raises ``ChecksumMismatch`` and is
        not kept. An upload that expired unfinished raises ``GoneError``.
        tuspy sends without a timeout.
        """
        source = Path(path)
        metadata = {"case_id": _id(case_id), "filename": filename or source.name}
        tus_client = tus.TusClient(self.base_url + API_PREFIX + "/uploads")
        with source.open("rb") as stream:
            length = os.fstat(stream.fileno()).st_size
            uploader = tus_client.uploader(
                file_stream=stream, chunk_size=chunk_size, metadata=metadata, upload_checksum=True
            )
            if url is None:
                url = self._tus(tus_client, uploader.create_url)
                uploader.set_url(url)
            else:
                status = self.upload_status(url)
                if status.length != length:
                    raise ValueError(
                        f"The upload at {url} is {status.length} bytes long, the file {length}."
                    )
                uploader.set_url(url)
                uploader.offset = status.offset
            while True:
                if on_progress is not None:
                    on_progress(UploadProgress(url, uploader.offset, length))
                if uploader.offset >= length:
                    return url
                self._tus(tus_client, uploader.upload_chunk)

    def upload_status(self, url: str) -> UploadStatus:
        """How many bytes of the upload at ``url`` the server holds, and of how many."""
        response = self._request("HEAD", url, headers=TUS_HEADERS)
        return UploadStatus(
            int(response.headers["Upload-Offset"]), int(response.headers["Upload-Length"])
        )

    def terminate_upload(self, url: str) -> None:
        """Abandon an unfinished upload; the server deletes it with its bytes."""
        self._request("DELETE", url, headers=TUS_HEADERS)

    # Evidence

    def finalise_evidence(
        self,
        case_id: UUIDLike,
        *,
        upload_id: UUIDLike,
        kind: EvidenceKind,
        sha256: str,
        captured_at: datetime | str,
        place: str,
        device_id: str,
        private_key: Ed25519PrivateKey,
        latitude: str | None = None,
        longitude: str | None = None,
        description: str | None = None,
        evidence_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> Evidence:
        """Make a finished upload evidence of the case, signed with the device's key.

        ``sha256`` is the file's hash computed on the device at capture; the
        server refuses the upload when its bytes hash otherwise (422, nothing
        kept). Coordinates are decimal strings. With ``evidence_id`` a resend
        returns the item already recorded.
        """
        if isinstance(captured_at, datetime):
            captured_at = _aware(captured_at, "captured_at").isoformat()
        body = _compact(
            {
                "id": _id(evidence_id) if evidence_id else None,
                "upload_id": _id(upload_id),
                "kind": kind,
                "sha256": sha256,
                "captured_at": captured_at,
                "place": place,
                "latitude": latitude,
                "longitude": longitude,
                "device_id": device_id,
                "description": description,
            }
        )
        fields = evidence_fields(case_id, body)
        body["device_signature"] = signing.sign(private_key, EVIDENCE_PURPOSE, fields)
        return self._post(f"/cases/{_id(case_id)}/evidence", body, idempotency_key).json()

    def list_evidence(self, case_id: UUIDLike) -> list[Evidence]:
        """The case's evidence, oldest first."""
        return self._request("GET", f"/cases/{_id(case_id)}/evidence").json()

    def get_evidence(self, evidence_id: UUIDLike) -> Evidence:
        return self._request("GET", f"/evidence/{_id(evidence_id)}").json()

    def evidence_content(
        self,
        evidence_id: UUIDLike,
        *,
        purpose: str,
        disposition: Disposition = "attachment",
        byte_range: tuple[int, int | None] | None = None,
    ) -> bytes:
        """The file's bytes, or with ``byte_range=(start, stop)`` those from ``start``
        up to ``stop`` (excluded; ``None``: the end), like a slice.

        Each request adds a link to the chain of custody with ``purpose``:
        ``viewed`` for ``disposition="inline"``, else ``downloaded``.
        """
        headers = dict(ANY_CONTENT)
        if byte_range is not None:
            headers["Range"] = _range_header(*byte_range)
        params = {"purpose": purpose, "disposition": disposition}
        path = f"/evidence/{_id(evidence_id)}/content"
        return self._request("GET", path, params=params, headers=headers).content

    def download_evidence(
        self,
        evidence_id: UUIDLike,
        destination: str | os.PathLike[str],
        *,
        purpose: str,
        disposition: Disposition = "attachment",
    ) -> EvidenceFile:
        """Stream the whole file to ``destination`` (a file path), recorded in the chain
        of custody as ``evidence_content`` is.

        The bytes go to a temporary file next to it, which replaces
        ``destination`` only when its SHA-256 is the one the server names
        (``ETag``); otherwise ``ContentMismatch`` is raised and nothing is kept.
        """
        target = Path(destination)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        params = {"purpose": purpose, "disposition": disposition}
        path = f"/evidence/{_id(evidence_id)}/content"
        digest, size = hashlib.sha256(), 0
        with self._request("GET", path, params=params, headers=ANY_CONTENT, stream=True) as got:
            expected = got.headers.get("ETag", "").strip('"')
            try:
                with part.open("xb") as out:
                    for block in got.iter_content(DOWNLOAD_BLOCK_SIZE):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
                if digest.hexdigest() != expected:
                    raise ContentMismatch(
                        f"The downloaded bytes hash to {digest.hexdigest()}, not {expected}."
                    )
                part.replace(target)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        return EvidenceFile(target, size, expected, got.headers.get("Content-Type", ""))

    def custody(self, evidence_id: UUIDLike) -> list[CustodyEvent]:
        """The chain of custody, in the order its links were recorded."""
        return self._request("GET", f"/evidence/{_id(evidence_id)}/custody").json()

    def record_custody(
        self,
        evidence_id: UUIDLike,
        *,
        event: CustodyEventName,
        place: str,
        purpose: str,
        location: str | None = None,
        recipient: str | None = None,
        idempotency_key: str | None = None,
    ) -> CustodyEvent:
        """Record a hand-over: ``stored`` needs the physical ``location`` (e.g. a case-file
        cabinet slot), ``transferred`` and ``returned`` the ``recipient``."""
        body = {
            "event": event,
            "place": place,
            "purpose": purpose,
            "location": location,
            "recipient": recipient,
        }
        path = f"/evidence/{_id(evidence_id)}/custody"
        return self._post(path, _compact(body), idempotency_key).json()

    def request_disposal(
        self, evidence_id: UUIDLike, reason: str, *, idempotency_key: str | None = None
    ) -> Disposal:
        """Ask a leader of the unit to approve disposing of the item."""
        path = f"/evidence/{_id(evidence_id)}/disposal"
        return self._post(path, {"reason": reason}, idempotency_key).json()

    def decide_disposal(
        self,
        evidence_id: UUIDLike,
        decision: Decision | Literal["approve", "return"],
        comment: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Disposal:
        """Approve the pending disposal (leaders), or return it (with a comment)."""
        body = {"decision": decision, "comment": comment}
        path = f"/evidence/{_id(evidence_id)}/disposal/decision"
        return self._post(path, body, idempotency_key).json()

    def evidence_alerts(
        self, *, resolved: bool = False, limit: int | None = None
    ) -> list[EvidenceAlert]:
        """Integrity alerts about your units' evidence, newest first (open ones by default)."""
        params = {"resolved": resolved, "limit": limit}
        return self._request("GET", "/evidence/alerts", params=params).json()

    # Early warnings and the feed

    def feed(self, since: str | None = None, limit: int | None = None) -> FeedPage:
        """Changes for you since the cursor ``since`` (the ``next_cursor`` of your last
        poll; ``None``: from the start), oldest first; ``more``: another page is ready."""
        return self._request("GET", "/feed", params={"since": since, "limit": limit}).json()

    def list_warnings(
        self,
        *,
        mine: bool | None = None,
        status: WarningStatus | str | Sequence[WarningStatus | str] | None = None,
        case_id: UUIDLike | None = None,
        kind: str | None = None,
        severity: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> WarningPage:
        """Warnings addressed to you, newest first; ``mine``: only on cases you handle."""
        params = {
            "mine": mine,
            "status": [status] if isinstance(status, str) else status,
            "case_id": case_id,
            "kind": kind,
            "severity": severity,
            "limit": limit,
            "cursor": cursor,
        }
        return self._request("GET", "/warnings", params=params).json()

    def acknowledge_warning(
        self, warning_id: UUIDLike, *, idempotency_key: str | None = None
    ) -> CaseWarning:
        """Acknowledge a warning (it stops escalating); acknowledging twice changes nothing."""
        path = f"/warnings/{_id(warning_id)}/acknowledge"
        return self._post(path, {}, idempotency_key).json()

    # Documents and signatures

    def document_templates(self) -> DocumentCatalogue:
        """Document kinds, their templates per case type and the question banks."""
        return self._request("GET", "/document-templates").json()

    def create_document(
        self,
        case_id: UUIDLike,
        *,
        kind: str,
        person_id: UUIDLike | None = None,
        title: str | None = None,
        person_is_minor: bool | None = None,
        needs_interpreter: bool | None = None,
        document_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> DocumentWithEtag:
        """Start a draft from the template of ``kind``, prefilled with case and person
        data; with ``document_id`` a resend returns the draft already made."""
        body = {
            "id": document_id,
            "kind": kind,
            "person_id": person_id,
            "title": title,
            "person_is_minor": person_is_minor,
            "needs_interpreter": needs_interpreter,
        }
        path = f"/cases/{_id(case_id)}/documents"
        return _with_etag(self._post(path, _compact(body), idempotency_key))

    def list_documents(self, case_id: UUIDLike) -> list[DocumentSummary]:
        """The case's documents without their content, oldest first."""
        return self._request("GET", f"/cases/{_id(case_id)}/documents").json()

    def get_document(self, document_id: UUIDLike) -> DocumentWithEtag:
        """A document with its content (each read is audited: it holds identity data)."""
        return _with_etag(self._request("GET", f"/documents/{_id(document_id)}"))

    def edit_document(
        self, document_id: UUIDLike, etag: str, changes: DocumentChanges
    ) -> DocumentWithEtag:
        """Change the draft read with ``etag``; a stale one raises ``PreconditionFailed``."""
        path = f"/documents/{_id(document_id)}"
        return _with_etag(self._request("PATCH", path, body=changes, headers={"If-Match": etag}))

    def finalize_document(
        self, document_id: UUIDLike, etag: str, *, idempotency_key: str | None = None
    ) -> DocumentWithEtag:
        """Freeze the draft read with ``etag``; the result carries its ``content_sha256``."""
        path = f"/documents/{_id(document_id)}/finalize"
        return _with_etag(self._post(path, {}, idempotency_key, {"If-Match": etag}))

    def sign_document(
        self,
        document: Document,
        *,
        signer_role: SignerRole | str,
        signer_name: str,
        strokes: Strokes,
        image_png: bytes,
        signed_at: datetime,
        device_id: str,
        private_key: Ed25519PrivateKey,
        signer_user_id: UUIDLike | None = None,
        signer_id_number: str | None = None,
        fingerprint: bytes | None = None,
        signature_id: UUIDLike | None = None,
        idempotency_key: str | None = None,
    ) -> Signature:
        """Add a signature over ``document`` as the signer was shown it, signed with the
        device's key.

        The content hash signed is computed here from ``document["content"]``, so
        a document whose content changed since it was read is refused
        (``ConflictError``). Officers sign with their ``signer_user_id``;
        ``fingerprint`` is a PNG or JPEG. With ``signature_id`` a resend returns
        the signature already recorded.
        """
        body = {
            "id": _id(signature_id) if signature_id else None,
            **_signature_submission(
                document_id=_id(document["id"]),
                content_sha256=content_sha256(document["content"]),
                signer_role=str(signer_role),
                signer_name=signer_name,
                signer_user_id=_id(signer_user_id) if signer_user_id else None,
                signer_id_number=signer_id_number,
                signed_at=signed_at,
                image_png=image_png,
                fingerprint=fingerprint,
                strokes=strokes,
                device_id=device_id,
                private_key=private_key,
            ),
        }
        path = f"/documents/{_id(document['id'])}/signatures"
        return self._post(path, _compact(body), idempotency_key).json()

    def list_signatures(self, document_id: UUIDLike) -> list[Signature]:
        """The document's signatures, without their images."""
        return self._request("GET", f"/documents/{_id(document_id)}/signatures").json()

    def signature_image(self, document_id: UUIDLike, signature_id: UUIDLike) -> bytes:
        """The signature as drawn (PNG)."""
        path = f"/documents/{_id(document_id)}/signatures/{_id(signature_id)}/image"
        return self._request("GET", path, headers=ANY_CONTENT).content

    def signature_fingerprint(self, document_id: UUIDLike, signature_id: UUIDLike) -> bytes:
        """The signature's fingerprint (PNG or JPEG); ``NotFoundError`` when it has none."""
        path = f"/documents/{_id(document_id)}/signatures/{_id(signature_id)}/fingerprint"
        return self._request("GET", path, headers=ANY_CONTENT).content

    def document_pdf(self, document_id: UUIDLike) -> bytes:
        """A finalised or signed document as PDF, for printing and archiving."""
        path = f"/documents/{_id(document_id)}/pdf"
        return self._request("GET", path, headers=ANY_CONTENT).content

    def verify_document(self, document_id: UUIDLike) -> Verification:
        """Whether the content still has its recorded hash and the signatures cover it."""
        return self._request("GET", f"/documents/{_id(document_id)}/verify").json()


def _is_expired_token(response: requests.Response) -> bool:
    """A 401 for an expired access token. An answer to HEAD has no body to tell
    why it was refused: any 401 may be one (a refresh tells)."""
    if response.status_code != HTTPStatus.UNAUTHORIZED:
        return False
    if response.request.method == "HEAD":
        return True
    return _problem_of(response).get("type") == TOKEN_EXPIRED


def upload_id_of(url: str) -> str:
    """The id of the upload at ``url``, as ``upload_file`` returns it, for ``finalise_evidence``."""
    return _id(urlsplit(url).path.rstrip("/").rpartition("/")[2])


def _range_header(start: int, stop: int | None) -> str:
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError("A byte range needs 0 <= start < stop.")
    return f"bytes={start}-" if stop is None else f"bytes={start}-{stop - 1}"


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} needs a UTC offset.")
    return value


def _with_etag(response: requests.Response) -> DocumentWithEtag:
    return DocumentWithEtag(response.json(), response.headers["ETag"])


def _outcome(response: requests.Response) -> StepOutcome:
    outcome: StepOutcome = response.json()
    outcome["etag"] = response.headers["ETag"]
    return outcome


# Remote sessions: a participant who is not a user (witness mode of the field client)

PARTICIPANT_PREFIX = "/participant"
IDENTIFICATION_PREFIX = PARTICIPANT_PREFIX + "/identification"
IdentificationStep = Literal[
    "waiting", "instructions", "lineup", "choice", "confidence", "record", "done"
]
Presentation = Literal["simultaneous", "sequential"]
SequentialAnswer = Literal["yes", "no"]
ChoiceOutcome = Literal["selected", "not_present", "dont_know"]


class ParticipantGrant(TypedDict):
    access_token: str
    token_type: str
    expires_at: str
    session_id: str
    participant_id: str
    role: str
    kind: str


class ParticipantSession(TypedDict):
    session_id: str
    kind: str
    state: str
    role: str
    name: str
    scheduled_start: str
    scheduled_end: str


class IdentificationState(TypedDict):
    step: IdentificationStep
    presentation: Presentation
    lineup_kind: str | None
    member_count: int
    instructions: NotRequired[Label | None]


class LineupMember(TypedDict):
    """A member as the identifier sees it: only the identifier's own position."""

    position: int
    has_image: bool
    label: str


class LineupMembers(TypedDict):
    members: list[LineupMember]
    remaining: int


class IdentificationRecord(TypedDict):
    available: bool
    document_id: str | None
    content_sha256: str | None
    lines: list[str]


class ParticipantClient(FieldcaseClient):
    """A participant's calls, with the token a one-time code yields (``join``).

    The token is scoped to one session and one role, short-lived and not
    refreshable: when it ends, the participant joins again with a new code. It is
    kept in memory only. The participant's changes are steps of a procedure the
    server enforces in order, so they are sent without an ``Idempotency-Key``: a
    resent step is refused (409) and the caller reads the state again.
    """

    def join(self, code: str) -> ParticipantGrant:
        grant: ParticipantGrant = self._request(
            "POST", PARTICIPANT_PREFIX + "/join", body={"code": code}, authenticated=False
        ).json()
        self.set_tokens(grant["access_token"], None)
        return grant

    def forget(self) -> None:
        """Drop the participant's token (the end of the participant's turn)."""
        self.set_tokens(None, None)

    def participant_session(self) -> ParticipantSession:
        return self._request("GET", PARTICIPANT_PREFIX + "/session").json()

    def identification_state(self) -> IdentificationState:
        return self._request("GET", IDENTIFICATION_PREFIX).json()

    def acknowledge_instructions(self) -> IdentificationState:
        path = IDENTIFICATION_PREFIX + "/instructions"
        return self._request("POST", path, body={"acknowledged": True}).json()

    def lineup_members(self) -> LineupMembers:
        """The members to show now: all of them (simultaneous) or the next one to answer
        (sequential). The server logs that they were shown."""
        return self._request("GET", IDENTIFICATION_PREFIX + "/members").json()

    def member_image(self, position: int) -> bytes:
        path = f"{IDENTIFICATION_PREFIX}/members/{int(position)}/image"
        return self._request("GET", path, headers=ANY_CONTENT).content

    def answer_member(self, position: int, answer: SequentialAnswer) -> IdentificationState:
        """Sequential presentation: the answer about the member shown now."""
        body = {"position": int(position), "answer": answer}
        return self._request("POST", IDENTIFICATION_PREFIX + "/responses", body=body).json()

    def choose(self, outcome: ChoiceOutcome, position: int | None = None) -> IdentificationState:
        body = {"outcome": outcome, "position": position}
        return self._request("POST", IDENTIFICATION_PREFIX + "/choice", body=body).json()

    def state_confidence(self, statement: str, scale: int) -> IdentificationState:
        body = {"statement": statement, "scale": int(scale)}
        return self._request("POST", IDENTIFICATION_PREFIX + "/confidence", body=body).json()

    def identification_record(self) -> IdentificationRecord:
        return self._request("GET", IDENTIFICATION_PREFIX + "/record").json()

    def sign_identification_record(
        self,
        record: IdentificationRecord,
        *,
        signer_name: str,
        strokes: Strokes,
        image_png: bytes,
        signed_at: datetime,
        device_id: str,
        private_key: Ed25519PrivateKey,
        fingerprint: bytes | None = None,
    ) -> Signature:
        """The identifier signs the record as ``party`` on an enrolled device: the device
        signs the same fields as for any document signature (``sign_document``), over
        the content hash the record was shown with."""
        if not record["available"] or not record["document_id"] or not record["content_sha256"]:
            raise ValueError("The record is not ready to be signed.")
        submission = _signature_submission(
            document_id=_id(record["document_id"]),
            content_sha256=record["content_sha256"],
            signer_role="party",
            signer_name=signer_name,
            signer_user_id=None,
            signer_id_number=None,
            signed_at=signed_at,
            image_png=image_png,
            fingerprint=fingerprint,
            strokes=strokes,
            device_id=device_id,
            private_key=private_key,
        )
        # The server names the signer from the participant token, not from the body.
        body = {key: value for key, value in submission.items() if key not in SIGNER_FIELDS}
        path = IDENTIFICATION_PREFIX + "/record/signature"
        return self._request("POST", path, body=body).json()


SIGNER_FIELDS = ("signer_role", "signer_name", "signer_user_id", "signer_id_number")


def _signature_submission(
    *,
    document_id: str,
    content_sha256: str,
    signer_role: str,
    signer_name: str,
    signer_user_id: str | None,
    signer_id_number: str | None,
    signed_at: datetime,
    image_png: bytes,
    fingerprint: bytes | None,
    strokes: Any,
    device_id: str,
    private_key: Any,
) -> dict[str, Any]:
    """A signature's submission body, signed by the device over its canonical fields."""
    points = [[[int(value) for value in point] for point in stroke] for stroke in strokes]
    fields = signature_fields(
        document_id=document_id,
        content_sha256=content_sha256,
        signer_role=signer_role,
        signer_name=signer_name,
        signer_user_id=signer_user_id,
        signer_id_number=signer_id_number,
        signed_at=_aware(signed_at, "signed_at"),
        image_png=image_png,
        fingerprint=fingerprint,
        strokes=points,
        device_id=device_id,
    )
    return {
        "signer_role": signer_role,
        "signer_name": signer_name,
        "signer_user_id": signer_user_id,
        "signer_id_number": signer_id_number,
        "strokes": points,
        "image_png": signing.b64encode(image_png),
        "fingerprint_png": signing.b64encode(fingerprint) if fingerprint is not None else None,
        "signed_at": signed_at,
        "content_sha256": content_sha256,
        "device_id": device_id,
        "device_signature": signing.sign(private_key, SIGNATURE_PURPOSE, fields),
    }
