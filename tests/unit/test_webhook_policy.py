"""The receiver policy: schemes, host patterns and address kinds, in the line file too."""

from __future__ import annotations

import ipaddress

import pytest

from controller.linefile.loader import REFERENCE_LINE, ConfigError, parse
from controller.webhooks.policy import AddressKind, HostPattern, ReceiverPolicy, address_kind

TEXT = REFERENCE_LINE.read_text()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", AddressKind.PUBLIC),
        ("2606:4700::1111", AddressKind.PUBLIC),
        ("10.1.2.3", AddressKind.PRIVATE),
        ("192.168.0.10", AddressKind.PRIVATE),
        ("100.64.0.1", AddressKind.PRIVATE),
        ("fd12::1", AddressKind.PRIVATE),
        ("127.0.0.1", AddressKind.LOOPBACK),
        ("::1", AddressKind.LOOPBACK),
        ("169.254.169.254", AddressKind.LINK_LOCAL),
        ("fe80::1", AddressKind.LINK_LOCAL),
        ("::ffff:169.254.169.254", AddressKind.LINK_LOCAL),  # IPv4 inside IPv6
        ("0.0.0.0", AddressKind.UNUSABLE),
        ("224.0.0.1", AddressKind.UNUSABLE),
    ],
)
def test_address_kinds(address: str, kind: AddressKind) -> None:
    assert address_kind(ipaddress.ip_address(address)) is kind


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://wms.example.com/cb", None),
        ("https://8.8.8.8/cb", None),
        (
            "http://wms.example.com/cb",
            "scheme 'http' is not allowed (webhooks.allowed_schemes: https)",
        ),
        (
            "ftp://wms.example.com/cb",
            "scheme 'ftp' is not allowed (webhooks.allowed_schemes: https)",
        ),
        (
            "https://169.254.169.254/latest",
            "169.254.169.254 is a link-local address, never a webhook receiver",
        ),
        ("https://[fe80::1]/x", "fe80::1 is a link-local address, never a webhook receiver"),
        (
            "https://[::ffff:a9fe:a9fe]/x",
            "::ffff:a9fe:a9fe is a link-local address, never a webhook receiver",
        ),
        (
            "https://127.0.0.1:8080/x",
            "127.0.0.1 is a loopback address (webhooks.allow_loopback is off)",
        ),
        ("https://localhost/x", "localhost is a loopback address (webhooks.allow_loopback is off)"),
        ("https://10.0.0.5/x", "10.0.0.5 is a private address (webhooks.allow_private is off)"),
        ("https://", "the URL names no host"),
    ],
)
def test_the_default_policy(url: str, reason: str | None) -> None:
    assert ReceiverPolicy().refuse_url(url) == reason


def test_loopback_and_private_only_when_configured() -> None:
    policy = ReceiverPolicy(["https", "http"], allow_loopback=True)
    assert policy.refuse_url("http://127.0.0.1:9000/cb") is None
    assert policy.refuse_url("http://localhost/cb") is None
    assert policy.refuse_url("http://10.0.0.5/cb") is not None
    assert policy.refuse_url("http://169.254.169.254/") is not None  # never
    private = ReceiverPolicy(allow_private=True)
    assert private.refuse_url("https://10.0.0.5/cb") is None
    assert private.refuse_url("https://127.0.0.1/cb") is not None


def test_host_patterns() -> None:
    policy = ReceiverPolicy(
        hosts=["wms.example.com", "*.hooks.example.net", "10.20.0.0/16", "2001:db8::7"],
        allow_private=True,
    )
    allowed = [
        "https://wms.example.com/cb",
        "https://WMS.Example.com./cb",
        "https://eu.hooks.example.net/cb",
        "https://10.20.3.4/cb",
    ]
    for url in allowed:
        assert policy.refuse_url(url) is None, url
    for url in (
        "https://other.example.com/cb",
        "https://hooks.example.net/cb",  # the wildcard covers subdomains only
        "https://evil-hooks.example.net/cb",
        "https://10.21.0.1/cb",
        "https://wms.example.com.evil.org/cb",
    ):
        assert (
            policy.refuse_url(url) == f"host {url.split('/')[2]!r} is not in webhooks.allowed_hosts"
        )


@pytest.mark.parametrize("bad", ["", "*", "*.", "wms..example", "a b", "10.0.0.0/33", "x/y"])
def test_bad_patterns(bad: str) -> None:
    with pytest.raises(ValueError):
        HostPattern.parse(bad)


async def test_a_name_that_resolves_inside_is_refused_before_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def to_metadata(host: str, port: int) -> list[ipaddress.IPv4Address]:
        return [ipaddress.IPv4Address("8.8.8.8"), ipaddress.IPv4Address("169.254.169.254")]

    monkeypatch.setattr("controller.webhooks.policy.resolve", to_metadata)
    reason = await ReceiverPolicy().refuse_delivery("https://wms.example.com/cb")
    assert reason == (
        "wms.example.com resolves to 169.254.169.254, a link-local address, never a webhook "
        "receiver"
    )


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "line.yaml", {})
    return caught.value.render().splitlines()


def with_webhooks(block: str) -> str:
    return TEXT.replace("\nmqtt:\n", f"\nwebhooks:\n{block}\nmqtt:\n", 1)


def test_targets_follow_the_same_rules_in_the_line_file() -> None:
    text = with_webhooks(
        "  targets:\n"
        "    - {url: 'http://169.254.169.254/', secret: a-raw-secret-value}\n"
        "    - {url: 'https://wms.example.com/hooks', secret: a-raw-secret-value}\n"
    )
    out = problems(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "169.254" in t)
    assert out == [
        f"line.yaml:{line}: webhooks.targets.0.url: not an allowed receiver: scheme 'http' is "
        "not allowed (webhooks.allowed_schemes: https)"
    ]
    opened = text.replace("  targets:\n", "  allowed_schemes: [https, http]\n  targets:\n")
    [msg] = problems(opened)
    assert msg.endswith("169.254.169.254 is a link-local address, never a webhook receiver")


def test_bad_policy_settings_are_named() -> None:
    [msg] = problems(with_webhooks("  allowed_hosts: ['wms..example']"))
    assert "webhooks.allowed_hosts" in msg and "'wms..example' is not a host name" in msg
    [msg] = problems(with_webhooks("  allowed_schemes: [gopher]"))
    assert "webhooks.allowed_schemes.0" in msg
    cfg = parse(with_webhooks("  allowed_schemes: [http, https]\n  allow_loopback: true"), "l", {})
    assert cfg.webhooks.allow_loopback and not cfg.webhooks.allow_private
