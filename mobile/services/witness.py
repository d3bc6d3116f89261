"""The witness mode's flow: a witness (辨认人) takes part in an identification on a
police tablet, with a one-time code instead of a sign-in.

``WitnessSession`` makes the calls, one at a time and in the order the server
enforces: join with the code, acknowledge the instructions, see the members,
answer (sequential presentation), choose, state confidence, sign the record.
After each call it reads the server's state again and answers with a
``WitnessView``: what the screens show next. The server decides the step
(``SERVER_STEPS``); the flow adds only what the witness does on the tablet
alone: in simultaneous presentation, going from the members to the choice and
back (the server is at its choice step as soon as the members are shown), and
in sequential presentation, which members the witness answered "yes" to (the
choice is one of them).

``WitnessFlow`` runs a ``WitnessSession`` on its own worker thread and hands
each new view to ``deliver`` (the app passes one that goes through
``Clock.schedule_once``, so the screens are touched on the UI thread only).

The participant token lives in the ``ParticipantClient`` in memory and nowhere
else; ``end()`` forgets it. Nothing here names a member: members are their
positions for this witness, as the server gave them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import requests

from mobile.services.device import DeviceKeys
from mobile.services.store import LocalStore
from mobile.services.sync import KNOWN_USERS, USERNAME
from shared.client import (
    ApiError,
    AuthError,
    ParticipantClient,
    RateLimited,
    ServerError,
    Strokes,
)

log = logging.getLogger(__name__)

Step = Literal[
    "code", "waiting", "instructions", "lineup", "choice", "confidence", "record", "done", "ended"
]
ErrorReason = Literal[
    "code_refused",
    "rate_limited",
    "offline",
    "not_identifier",
    "session_ended",
    "refused",
    "server",
    "device_not_enrolled",
    "record_not_ready",
]
IDENTIFIER_ROLE = "identifier"
IDENTIFICATION_KIND = "identification"
SERVER_STEPS: frozenset[str] = frozenset(
    {"waiting", "instructions", "lineup", "choice", "confidence", "record", "done"}
)


@dataclass(frozen=True)
class Member:
    """A member as the witness sees it: the position label and the photo, if any."""

    position: int
    label: str
    image: bytes | None = None


@dataclass(frozen=True)
class WitnessView:
    """What the witness screens show; ``error`` is a reason the screens put in words,
    ``detail`` the server's own text for a refusal."""

    step: Step = "code"
    presentation: str = "simultaneous"
    lineup_kind: str | None = None
    member_count: int = 0
    instructions: dict[str, str] | None = None
    members: tuple[Member, ...] = ()
    remaining: int = 0
    choosable: tuple[int, ...] = ()
    """The positions the witness may choose: all (simultaneous), or those answered
    "yes" (sequential)."""
    record_lines: tuple[str, ...] = ()
    record_available: bool = False
    signed: bool = False
    error: ErrorReason | None = None
    detail: str = ""


@dataclass(frozen=True)
class TabletKey:
    """The enrolled device key the tablet signs the witness's signature with."""

    device_id: str
    device: DeviceKeys


def tablet_key(store: LocalStore, device: DeviceKeys, server_url: str) -> TabletKey | None:
    """The tablet's enrolled device id for ``server_url``: the last user's, else any user's
    who signed in here; ``None`` if no officer has ever signed in on this tablet."""
    known = json.loads(store.get_setting(KNOWN_USERS) or "{}")
    names = [store.get_setting(USERNAME) or ""] + [u.get("username") or "" for u in known.values()]
    for username in names:
        if username and device.enrolled_for(server_url, username):
            return TabletKey(device.device_id_for(username), device)
    return None


class WitnessError(Exception):
    def __init__(self, reason: ErrorReason, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class WitnessSession:
    """The witness's calls, synchronous (``WitnessFlow`` runs them on a thread)."""

    def __init__(
        self,
        server_url: str,
        key: TabletKey | None,
        *,
        client_factory: Callable[[str], ParticipantClient] = ParticipantClient,
    ) -> None:
        self.client = client_factory(server_url)
        self.key = key
        self.signer_name = ""
        self.view = WitnessView()
        self._members: tuple[Member, ...] | None = None
        self._remaining = 0
        self._choosing = False
        self._yes: list[int] = []
        self._signed = False

    # The procedure

    def join(self, code: str) -> WitnessView:
        """Join with the one-time code; refused before the code is used when this tablet
        could not sign the record at the end."""
        if self.key is None:
            raise WitnessError("device_not_enrolled")
        try:
            grant = self.client.join(code.strip())
        except RateLimited as error:
            raise WitnessError("rate_limited") from error
        except ServerError:
            raise
        except ApiError as error:
            raise WitnessError("code_refused") from error
        if grant["role"] != IDENTIFIER_ROLE or grant["kind"] != IDENTIFICATION_KIND:
            self.client.forget()
            raise WitnessError("not_identifier")
        self.signer_name = self.client.participant_session()["name"]
        return self.read()

    def read(self) -> WitnessView:
        """The server's state, with the members (fetched once per member shown) or the
        record."""
        state = self.client.identification_state()
        step: Step = state["step"] if state["step"] in SERVER_STEPS else "waiting"
        sequential = state["presentation"] == "sequential"
        view = WitnessView(
            step=step,
            presentation=state["presentation"],
            lineup_kind=state.get("lineup_kind"),
            member_count=state.get("member_count") or 0,
            instructions=state.get("instructions"),
            signed=self._signed,
        )
        if step == "lineup" or (step == "choice" and not sequential):
            if self._members is None:
                self._members = self._fetch_members()
            everyone = tuple(range(1, view.member_count + 1))
            view = replace(
                view,
                step="choice" if self._choosing and not sequential else "lineup",
                members=self._members,
                remaining=self._remaining,
                choosable=everyone,
            )
        elif step == "choice":
            view = replace(view, choosable=tuple(self._yes))
        elif step == "record":
            record = self.client.identification_record()
            view = replace(
                view, record_lines=tuple(record["lines"]), record_available=record["available"]
            )
        self.view = view
        return view

    def _fetch_members(self) -> tuple[Member, ...]:
        listed = self.client.lineup_members()
        self._remaining = listed["remaining"]
        return tuple(
            Member(
                position=m["position"],
                label=m["label"],
                image=self.client.member_image(m["position"]) if m["has_image"] else None,
            )
            for m in listed["members"]
        )

    def acknowledge(self) -> WitnessView:
        self.client.acknowledge_instructions()
        return self.read()

    def answer(self, position: int, answer: Literal["yes", "no"]) -> WitnessView:
        """Sequential presentation: yes or no about the member shown; then the next one."""
        try:
            self.client.answer_member(position, answer)
        finally:
            self._members = None
        if answer == "yes":
            self._yes.append(position)
        return self.read()

    def to_choice(self) -> WitnessView:
        """Simultaneous presentation: from the members to the answer (on the tablet)."""
        return self._choose_locally(True)

    def to_members(self) -> WitnessView:
        """Simultaneous presentation: back from the answer to the members."""
        return self._choose_locally(False)

    def _choose_locally(self, choosing: bool) -> WitnessView:
        if self.view.presentation == "simultaneous" and self.view.step in ("lineup", "choice"):
            self._choosing = choosing
            step: Step = "choice" if choosing else "lineup"
            self.view = replace(self.view, step=step, error=None, detail="")
        return self.view

    def choose(
        self, outcome: Literal["selected", "not_present", "dont_know"], position: int | None
    ) -> WitnessView:
        self.client.choose(outcome, position if outcome == "selected" else None)
        self._members = None
        self._choosing = False
        return self.read()

    def state_confidence(self, statement: str, scale: int) -> WitnessView:
        self.client.state_confidence(statement.strip(), max(0, min(100, int(scale))))
        return self.read()

    def sign(self, strokes: Strokes, image_png: bytes) -> WitnessView:
        """The witness signs the record shown, as ``party``, with the tablet's device key."""
        if self.key is None:
            raise WitnessError("device_not_enrolled")
        record = self.client.identification_record()
        if not record["available"] or tuple(record["lines"]) != self.view.record_lines:
            self.read()
            raise WitnessError("record_not_ready")
        self.client.sign_identification_record(
            record,
            signer_name=self.signer_name,
            strokes=strokes,
            image_png=image_png,
            signed_at=datetime.now(UTC),
            device_id=self.key.device_id,
            private_key=self.key.device.private_key,
        )
        self._signed = True
        return self.read()

    def end(self) -> None:
        self.client.forget()
        self.client.close()


def failure(error: BaseException, joined: bool) -> WitnessError:
    """The reason to show for an exception of a call."""
    if isinstance(error, WitnessError):
        return error
    if isinstance(error, requests.RequestException):
        return WitnessError("offline")
    if isinstance(error, AuthError) and joined:
        return WitnessError("session_ended")
    if isinstance(error, ServerError):
        return WitnessError("server")
    if isinstance(error, ApiError):
        return WitnessError("refused", error.detail or error.title)
    log.exception("the witness flow failed")
    return WitnessError("server", str(error))


class WitnessFlow:
    """A ``WitnessSession`` on its own worker thread; each new view goes to ``on_view``
    through ``deliver`` (on the UI thread, in the app)."""

    def __init__(
        self,
        server_url: str,
        key: TabletKey | None,
        on_view: Callable[[WitnessView], None],
        deliver: Callable[[Callable[[], None]], None],
        *,
        client_factory: Callable[[str], ParticipantClient] = ParticipantClient,
    ) -> None:
        self.session = WitnessSession(server_url, key, client_factory=client_factory)
        self.on_view = on_view
        self.deliver = deliver
        self.joined = False
        self.view = WitnessView()
        self._busy = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="witness")

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def join(self, code: str) -> None:
        self._run(lambda: self.session.join(code), joining=True)

    def refresh(self) -> None:
        self._run(self.session.read)

    def acknowledge(self) -> None:
        self._run(self.session.acknowledge)

    def answer(self, position: int, answer: Literal["yes", "no"]) -> None:
        self._run(lambda: self.session.answer(position, answer))

    def to_choice(self) -> None:
        self._run(self.session.to_choice)

    def to_members(self) -> None:
        self._run(self.session.to_members)

    def choose(self, outcome: Any, position: int | None = None) -> None:
        self._run(lambda: self.session.choose(outcome, position))

    def state_confidence(self, statement: str, scale: int) -> None:
        self._run(lambda: self.session.state_confidence(statement, scale))

    def sign(self, strokes: Strokes, image_png: bytes) -> None:
        self._run(lambda: self.session.sign(strokes, image_png))

    def end(self, *, wait: bool = False) -> None:
        """Forget the token and stop the thread, after the call running now (waiting for
        that with ``wait``)."""
        self._executor.submit(self.session.end)
        self._executor.shutdown(wait=wait)

    def _run(self, call: Callable[[], WitnessView], *, joining: bool = False) -> None:
        self._busy.set()
        self._executor.submit(self._job, call, joining)

    def _job(self, call: Callable[[], WitnessView], joining: bool) -> None:
        try:
            view = call()
            if joining:
                self.joined = True
        except Exception as error:
            reason = failure(error, self.joined)
            base = self._after_refusal() if reason.reason == "refused" else self.session.view
            if reason.reason == "session_ended":
                base = WitnessView(step="ended")
            view = replace(base, error=reason.reason, detail=reason.detail)
        self._busy.clear()
        self.deliver(lambda: self._publish(view))

    def _after_refusal(self) -> WitnessView:
        """The server refused a step (done already, or out of order): follow its state."""
        if not self.joined:
            return self.session.view
        try:
            return self.session.read()
        except (requests.RequestException, ApiError):
            return self.session.view

    def _publish(self, view: WitnessView) -> None:
        self.view = view
        self.on_view(view)
