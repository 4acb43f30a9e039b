"""Standard Webhooks signatures: round trip, the published test vector, and every rejection."""

from __future__ import annotations

import base64

import pytest

from controller.webhooks.signing import (
    SignatureError,
    secret_key,
    sign,
    signed_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = b'{"seq":7,"order_id":"SO-1","type":"released"}'
NOW = 1_767_225_600


def test_round_trip() -> None:
    headers = signed_headers(SECRET, "evt_7", NOW, BODY)
    assert headers["webhook-id"] == "evt_7"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, headers, BODY, now=NOW + 10) == "evt_7"


def test_matches_the_standard_webhooks_reference_vector() -> None:
    # the example in the Standard Webhooks specification's reference implementations
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_raw_string_secrets_are_used_as_utf8_bytes() -> None:
    assert secret_key("not-base64: ünïcode") == "not-base64: ünïcode".encode()
    headers = signed_headers("plain-secret", "evt_1", NOW, BODY)
    assert verify("plain-secret", headers, BODY, now=NOW) == "evt_1"


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!not base64!!", ""])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        secret_key(secret)


def test_any_of_several_signatures_may_match() -> None:
    headers = signed_headers(SECRET, "evt_7", NOW, BODY)
    headers["webhook-signature"] = "v1,AAAA v2,whatever " + headers["webhook-signature"]
    assert verify(SECRET, headers, BODY, now=NOW) == "evt_7"


def test_no_signature_without_a_secret() -> None:
    headers = signed_headers(None, "evt_7", NOW, BODY)
    assert "webhook-signature" not in headers
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-signature": None}, "missing"),
        ({"webhook-id": None}, "missing"),
        ({"webhook-timestamp": "yesterday"}, "unix seconds"),
        ({"webhook-timestamp": str(NOW - 301)}, "more than 300 s"),
        ({"webhook-timestamp": str(NOW + 301)}, "more than 300 s"),
        ({"webhook-id": "evt_8"}, "no webhook-signature matches"),
        ({"webhook-signature": "v1,AAAA"}, "no webhook-signature matches"),
        ({"webhook-signature": "v2,xyz"}, "no webhook-signature matches"),
    ],
)
def test_verification_failures(change: dict[str, str | None], message: str) -> None:
    headers: dict[str, str] = signed_headers(SECRET, "evt_7", NOW, BODY)
    for key, value in change.items():
        if value is None:
            headers.pop(key)
        else:
            headers[key] = value
    with pytest.raises(SignatureError, match=message):
        verify(SECRET, headers, BODY, now=NOW)


def test_tampered_body_or_wrong_secret_fail() -> None:
    headers = signed_headers(SECRET, "evt_7", NOW, BODY)
    with pytest.raises(SignatureError):
        verify(SECRET, headers, BODY + b" ", now=NOW)
    with pytest.raises(SignatureError):
        verify("whsec_" + base64.b64encode(b"other").decode(), headers, BODY, now=NOW)
