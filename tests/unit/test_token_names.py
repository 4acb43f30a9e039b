"""API token names, as the audit log shows who called."""

from __future__ import annotations

import pytest

from controller.linefile.loader import REFERENCE_LINE, ConfigError, parse

TEXT = REFERENCE_LINE.read_text()
TOKENS = '[{token: "first-token-0123456789"}, {token: "second-token-012345678", name: ops}]'


def test_tokens_are_named_by_position_unless_named() -> None:
    cfg = parse(TEXT, "line.yaml", {"LINECTL_API_TOKENS": TOKENS})
    assert [cfg.api.token_name(i) for i in range(2)] == ["token-1", "ops"]


def test_the_environment_token_is_named_env() -> None:
    env = {"LINECTL_API_TOKENS": TOKENS, "LINECTL_API_TOKEN": "env-token-0123456789ab"}
    cfg = parse(TEXT, "line.yaml", env)
    assert [cfg.api.token_name(i) for i in range(3)] == ["token-1", "ops", "env"]


def test_names_are_unique() -> None:
    twice = (
        '[{token: "first-token-0123456789", name: ops},'
        ' {token: "second-token-0123456789", name: ops}]'
    )
    with pytest.raises(ConfigError, match="names must be unique, ops appear"):
        parse(TEXT, "line.yaml", {"LINECTL_API_TOKENS": twice})
    clash = '[{token: "first-token-0123456789", name: token-2}, {token: "second-token-0123456789"}]'
    with pytest.raises(ConfigError, match="token-2"):
        parse(TEXT, "line.yaml", {"LINECTL_API_TOKENS": clash})
