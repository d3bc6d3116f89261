"""Function-level access checks for routes (checklist Z2)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from flask import g

from backend.errors import Forbidden
from backend.org.models import User
from shared.enums import Role

if TYPE_CHECKING:
    from backend.sessions.models import ParticipantRole, SessionParticipant

F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User:
    return g.user


def require_role(user: User, *roles: Role) -> None:
    if not user.has_role(*roles):
        raise Forbidden("Your role does not allow this.")


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Let only users holding one of ``roles`` call the view."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_role(current_user(), *roles)
            return view(*args, **kwargs)

        _document(wrapper, roles=sorted(roles))
        return wrapper  # type: ignore[return-value]

    return decorate


def current_participant() -> SessionParticipant:
    """The remote-session participant behind a participant token (participant routes)."""
    return g.participant


def participant_route(*roles: ParticipantRole, after_end: bool = False) -> Callable[[F], F]:
    """Let only remote-session participants holding one of ``roles`` call the view.

    The view takes a participant token (``backend.sessions``) and refuses user
    tokens; every other view refuses participant tokens. ``after_end`` lets the
    token in after its session has completed (to read and sign the record).
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_participant().role not in roles:
                raise Forbidden("Your part in this session does not allow this.")
            return view(*args, **kwargs)

        wrapper.participant = True  # type: ignore[attr-defined]
        wrapper.participant_after_end = after_end  # type: ignore[attr-defined]
        _document(wrapper, participant_roles=sorted(roles))
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a view as reachable without a bearer token (sign-in, refresh)."""
    view.public = True  # type: ignore[attr-defined]
    _document(view, public=True)
    return view


def _document(view: Any, **access: Any) -> None:
    """Record access rules where flask-smorest collects a view's OpenAPI details."""
    doc = dict(getattr(view, "_apidoc", {}))
    doc["access"] = {**doc.get("access", {}), **access}
    view._apidoc = doc
