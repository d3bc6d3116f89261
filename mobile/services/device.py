"""The device's identity: a stable id and an Ed25519 key pair enrolled with the server."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mobile.services.store import LocalStore
from shared import signing

DEVICE_ID = "device.id"
PRIVATE_KEY = "device.private_key"
ENROLMENTS = "device.enrolments"


class DeviceKeys:
    """The device's id and key, made on first use and kept in the local store.

    The private key is kept as PEM in the app's SQLite store, which is fine on a
    desktop behind the user's account. On Android it belongs in the Android
    Keystore (non-exportable, hardware-backed where available); the store is
    then only a fallback for platforms without one.

    The server binds a device id to one user, so on a device shared by several
    users each signs in under ``device_id_for(username)``: the installation's
    id with a short suffix per user, all with the same key.
    """

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._key: Ed25519PrivateKey | None = None

    @property
    def device_id(self) -> str:
        """This installation's id, generated once."""
        with self._lock:
            value = self._store.get_setting(DEVICE_ID)
            if value is None:
                value = uuid.uuid4().hex
                self._store.set_setting(DEVICE_ID, value)
            return value

    def device_id_for(self, username: str) -> str:
        """The id under which ``username`` enrols this device (at most 64 characters)."""
        suffix = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:8]
        return f"{self.device_id}:{suffix}"

    @property
    def private_key(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                pem = self._store.get_setting(PRIVATE_KEY)
                if pem is None:
                    key = signing.new_private_key()
                    self._store.set_setting(PRIVATE_KEY, signing.private_key_pem(key).decode())
                else:
                    key = signing.load_private_key_pem(pem.encode())
                self._key = key
            return self._key

    def public_key_text(self) -> str:
        """The public key as the server enrols it (base64 of the raw 32 bytes)."""
        return signing.public_key_text(self.private_key)

    def _enrolments(self) -> list[list[str]]:
        return json.loads(self._store.get_setting(ENROLMENTS) or "[]")

    def enrolled_for(self, server: str, username: str) -> bool:
        return [_server(server), _user(username)] in self._enrolments()

    def mark_enrolled(self, server: str, username: str) -> None:
        entry = [_server(server), _user(username)]
        with self._lock:
            enrolments = self._enrolments()
            if entry not in enrolments:
                enrolments.append(entry)
                self._store.set_setting(ENROLMENTS, json.dumps(enrolments))


def _server(url: str) -> str:
    return url.rstrip("/").lower()


def _user(username: str) -> str:
    return username.strip().lower()
