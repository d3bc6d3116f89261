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
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict, Unpack

import requests

from shared.enums import (
    ApprovalStatus,
    CaseType,
    Decision,
    IncidentStatus,
    PersonRole,
    Role,
    UnitTier,
)

API_PREFIX = "/api/v1"
PROBLEM_TYPE_PREFIX = "urn:fieldcase:problem:"
TOKEN_EXPIRED = PROBLEM_TYPE_PREFIX + "token-expired"
DEFAULT_TIMEOUT = 30.0
ACCEPT = "application/json, application/problem+json"

UUIDLike = uuid.UUID | str
Timeout = float | tuple[float, float]


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


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailed,
    422: ValidationError,
}


def _problem_of(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    try:
        title = HTTPStatus(response.status_code).phrase
    except ValueError:
        title = response.reason or ""
    return {"type": "about:blank", "title": title, "status": response.status_code}


def _retry_after(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_from_response(response: requests.Response) -> ApiError:
    """The ``ApiError`` subclass for an error response."""
    status, problem = response.status_code, _problem_of(response)
    if status == 429:
        return RateLimited(status, problem, _retry_after(response.headers.get("Retry-After")))
    if status >= 500:
        return ServerError(status, problem)
    return _ERRORS_BY_STATUS.get(status, ApiError)(status, problem)


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
    ) -> requests.Response:
        """Send one API request; raise ``ApiError`` for an error answer.

        A 401 for an expired access token refreshes the tokens and repeats the
        request once.
        """
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
                self.base_url + API_PREFIX + path,
                params=_query(params or {}),
                data=data,
                headers=sent,
                timeout=self.timeout,
            )

        token = self._access_token
        response = send(token)
        if authenticated and _is_expired_token(response) and self._refresh_token:
            with self._token_lock:
                if self._access_token == token:
                    self.refresh()
                token = self._access_token
            response = send(token)
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

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


def _is_expired_token(response: requests.Response) -> bool:
    return response.status_code == HTTPStatus.UNAUTHORIZED and (
        _problem_of(response).get("type") == TOKEN_EXPIRED
    )


def _outcome(response: requests.Response) -> StepOutcome:
    outcome: StepOutcome = response.json()
    outcome["etag"] = response.headers["ETag"]
    return outcome
