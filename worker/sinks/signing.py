"""Standard Webhooks signatures: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` (pure, no I/O)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"
#: The Standard Webhooks specification asks for secrets of 24 to 64 random bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class SecretError(ValueError):
    """A webhook secret that cannot be used; the message says what is wrong (never the secret itself)."""


def decode_secret(secret: str, *, name: str = "webhook secret") -> bytes:
    """The key bytes of a `whsec_<base64>` secret; SecretError (naming `name`) when it is malformed."""
    if not secret:
        raise SecretError(f"{name} is empty; expected whsec_ followed by base64 of 24-64 random bytes")
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError(f"{name} must start with {SECRET_PREFIX!r} (a Standard Webhooks secret)")
    encoded = secret[len(SECRET_PREFIX) :].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{name} is not valid base64 after {SECRET_PREFIX!r}") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretError(
            f"{name} decodes to {len(key)} bytes; Standard Webhooks secrets are "
            f"{MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes (e.g. whsec_ + base64 of 32 random bytes)"
        )
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` header value for one attempt of one message."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    signed = f"{message_id}.{timestamp}.".encode() + payload
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(key: bytes, message_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }


def generate_secret(size: int = 32) -> str:
    """A fresh `whsec_` secret (for documentation and tests)."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")
