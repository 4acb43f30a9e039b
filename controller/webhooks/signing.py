"""Webhook signatures in the Standard Webhooks scheme (https://www.standardwebhooks.com).

A message carries three headers: ``webhook-id`` (stable across retries), ``webhook-timestamp``
(unix seconds of this attempt) and ``webhook-signature``: ``v1,`` followed by the base64 of
HMAC-SHA256 over ``{id}.{timestamp}.{body}`` keyed with the secret. Several signatures may be
sent separated by spaces (key rotation); a receiver accepts the message if any matches.

Secrets are written ``whsec_<base64 of the key bytes>``; any other string is used as raw UTF-8
key bytes. Pure functions, no I/O: receivers can use :func:`verify` as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from kernel.config.webhooks import secret_key

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds a timestamp may be away from the receiver's clock

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SignatureError(ValueError):
    """A message whose signature headers are missing, stale or do not match."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(secret: str | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature when ``secret`` is None)."""
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, msg_id, timestamp, body)
    return headers


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """Check a received message; return its ``webhook-id`` or raise :class:`SignatureError`.

    ``headers`` must be looked up case-insensitively by the caller's mapping (for example
    ``httpx.Headers`` or Starlette's ``request.headers``) or use lower-case keys.
    """
    msg_id = headers.get(ID_HEADER)
    stamp = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    if not msg_id or not stamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(f"webhook-timestamp {stamp!r} is not unix seconds") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp {timestamp} is more than {tolerance} s off")
    expected = sign(secret, msg_id, timestamp, body).encode("ascii")
    for candidate in signatures.split():
        version, _, _ = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(
            candidate.encode("ascii", "replace"), expected
        ):
            return msg_id
    raise SignatureError("no webhook-signature matches")
