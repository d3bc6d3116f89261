"""Device signatures (checklist C2): one canonical form, signed by the device, server-checked.

A submission's canonical form is its JSON with keys sorted, no insignificant
whitespace and UTF-8 text (``ensure_ascii=False``), so the device and the
server derive the same bytes from the same fields. Floats are refused: their
text form differs between platforms, so coordinates travel as strings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class SigningError(ValueError):
    """The key, the signature or the signed content is malformed."""


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise SigningError("floats have no canonical form; send them as strings")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def canonical_form(purpose: str, fields: dict[str, Any]) -> bytes:
    """The bytes a device signs for a submission of kind ``purpose``."""
    document = {"purpose": purpose, **fields}
    _refuse_floats(document)
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def b64decode(text: str, *, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SigningError("not valid base64") from exc
    if length is not None and len(raw) != length:
        raise SigningError(f"expected {length} bytes, got {len(raw)}")
    return raw


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key in base64, as enrolled with the server."""
    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return b64encode(raw)


def load_public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64decode(text, length=PUBLIC_KEY_BYTES))


def sign(private_key: Ed25519PrivateKey, purpose: str, fields: dict[str, Any]) -> str:
    """A detached signature (base64) over the canonical form of ``fields``."""
    return b64encode(private_key.sign(canonical_form(purpose, fields)))


def verify(public_key: str, purpose: str, fields: dict[str, Any], signature: str) -> bool:
    """Whether ``signature`` is the enrolled key's signature over ``fields``."""
    try:
        key = load_public_key(public_key)
        key.verify(b64decode(signature, length=SIGNATURE_BYTES), canonical_form(purpose, fields))
    except (SigningError, InvalidSignature):
        return False
    return True


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def load_private_key_pem(pem: bytes) -> Ed25519PrivateKey:
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError("not an Ed25519 private key")
    return key


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.signing``: make a device key, or sign a submission (for scripts)."""
    parser = argparse.ArgumentParser(prog="python -m shared.signing", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="write a new private key (PEM), print the public")
    keygen.add_argument("key_file", type=Path)
    signer = commands.add_parser("sign", help="print the signature over a JSON object of fields")
    signer.add_argument("key_file", type=Path)
    signer.add_argument("purpose", help="evidence or signature")
    signer.add_argument("fields", help="the signed fields as a JSON object")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        key = new_private_key()
        args.key_file.write_bytes(private_key_pem(key))
        args.key_file.chmod(0o600)
        print(public_key_text(key))
    else:
        key = load_private_key_pem(args.key_file.read_bytes())
        print(sign(key, args.purpose, json.loads(args.fields)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
