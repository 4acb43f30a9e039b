"""Credentials are kept out of logs and the audit log, wherever they were put."""

from __future__ import annotations

import json
import logging

import pytest

from kernel import logs
from kernel.redact import REDACTED, is_secret_name, redact, redact_text

SECRET = "s3cr3t-value-0123456789"


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "access_token",
        "X-Api-Key",
        "api_key",
        "apikey",
        "client_secret",
        "password",
        "PASSWD",
        "auth",
        "Authorization",
        "signature",
        "session_id",
        "jwt",
        "private-key",
    ],
)
def test_credential_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["sku", "location", "limit", "cursor", "status", "assigned_to", "reason", "tote"]
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_urls_and_request_lines() -> None:
    assert redact_text(f"GET /v1/orders?token={SECRET}&limit=5 HTTP/1.1") == (
        f"GET /v1/orders?token={REDACTED}&limit=5 HTTP/1.1"
    )
    assert redact_text(f"https://wms.example/cb?x=1&access_token={SECRET}#top") == (
        f"https://wms.example/cb?x=1&access_token={REDACTED}#top"
    )
    assert redact_text(f"mqtts://robot:{SECRET}@broker:8883/") == (
        f"mqtts://robot:{REDACTED}@broker:8883/"
    )
    assert redact_text("/v1/orders?status=picking&type=b2c") == "/v1/orders?status=picking&type=b2c"
    assert redact_text("token=") == "token="  # nothing to hide


def test_nested_data() -> None:
    params = {
        "serial": "R01",
        "query": {"token": SECRET, "reason": "jam"},
        "body": {"items": [{"password": SECRET, "qty": 2}], "note": f"see ?api_key={SECRET}"},
    }
    clean = redact(params)
    assert SECRET not in json.dumps(clean)
    assert clean["query"] == {"token": REDACTED, "reason": "jam"}
    assert clean["body"]["items"] == [{"password": REDACTED, "qty": 2}]
    assert params["query"]["token"] == SECRET  # the caller's data is left alone


@pytest.mark.usefixtures("uvicorn_logs_to_root")
def test_the_log_handler_redacts_messages_and_extras(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        for fmt in ("text", "json"):
            logs.setup("debug", fmt)
            logging.getLogger("uvicorn.access").info(
                '%s - "%s %s HTTP/%s" %d',
                "127.0.0.1:5",
                "GET",
                f"/v1/orders?token={SECRET}",
                "1.1",
                401,
            )
            logging.getLogger("httpx").warning(
                "HTTP Request: %s %s", "POST", f"https://wms/cb?sig=1&api_key={SECRET}"
            )
            logging.getLogger("controller.x").warning(
                "receiver failing",
                extra={"url": f"https://wms/cb?token={SECRET}", "password": SECRET, "count": 3},
            )
            err = capsys.readouterr().err
            assert SECRET not in err
            assert err.count(REDACTED) == 4, err
            assert "/v1/orders?token=" in err and "count" in err
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
