"""Secrets kept out of logs and the audit log: credential-like query parameters, body fields
and the password of a URL's user info.

A client may put a token where it does not belong (``GET /v1/orders?token=...``,
``callback_url=https://wms/cb?api_key=...``). The request is refused or served as usual, but
the value must not be written anywhere: every place that records a URL, a query or a body
passes it through here first. A parameter counts as a credential when its name contains one
of :data:`SECRET_WORDS` (case and separators ignored), so ``access_token``, ``X-Api-Key``,
and ``client_secret`` are all covered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "apikey",
    "accesskey",
    "privatekey",
    "auth",
    "credential",
    "signature",
    "session",
    "cookie",
    "jwt",
    "bearer",
)
_SEPARATORS = re.compile(r"[^a-z0-9]")
_WORD = "|".join(SECRET_WORDS)
# name=value in a query string (after ? & or ;), the name holding a secret word
_QUERY_PAIR = re.compile(
    r"(?P<lead>[?&;](?P<name>[^=&;#\s\"'<>]*)=)(?P<value>[^&;#\s\"'<>]*)", re.IGNORECASE
)
# scheme://user:password@host
_USERINFO = re.compile(r"(?P<lead>\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)
_LOOKS_SECRET = re.compile(_WORD)


def is_secret_name(name: str) -> bool:
    """Whether a parameter or field called ``name`` holds a credential."""
    return _LOOKS_SECRET.search(_SEPARATORS.sub("", name.lower())) is not None


def redact_text(text: str) -> str:
    """``text`` with credential query values and URL passwords replaced by ``[redacted]``."""
    if "=" not in text and "@" not in text:
        return text

    def pair(m: re.Match[str]) -> str:
        if is_secret_name(m.group("name")) and m.group("value"):
            return m.group("lead") + REDACTED
        return m.group(0)

    return _USERINFO.sub(lambda m: m.group("lead") + REDACTED + "@", _QUERY_PAIR.sub(pair, text))


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like data) with secret-named fields and secrets in strings
    redacted."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_name(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Redacts secrets in every record a handler writes: its message (as formatted, so the
    request line of an access log or an HTTP client's URL is covered) and its extra fields."""

    def __init__(self, standard: frozenset[str]) -> None:
        super().__init__()
        self._standard = standard

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in list(vars(record).items()):
            if key in self._standard:
                continue
            if isinstance(value, str) and is_secret_name(key):
                setattr(record, key, REDACTED)
            elif isinstance(value, str | Mapping | list | tuple):
                setattr(record, key, redact(value))
        return True
