"""The service settings of the line's configuration: line name, clock, store, API, webhooks and
the links to the OPC UA servers (the MQTT broker's is in :mod:`kernel.config.mqtt`).

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, HttpUrl, SecretStr, field_validator, model_validator

from kernel.config.base import Id, PositiveFloat, Strict
from kernel.config.webhooks import HostPattern, secret_key


class LineInfo(Strict):
    id: Id = "line-1"
    name: str = "Fulfilment line"


class ClockConfig(Strict):
    time_scale: PositiveFloat = 1.0


# a PostgreSQL schema name linectl creates and quotes: lower-case letters, digits, underscores
SchemaName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z_][a-z0-9_]*$")]


def default_schema(line_id: str) -> str:
    """The PostgreSQL schema of a line that names none: ``linectl_`` and the line's id, with
    every character that is not a letter or digit as ``_``."""
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in line_id.lower())
    return f"linectl_{name}"[:63]


class StoreConfig(Strict):
    backend: Literal["sqlite", "postgresql"] = "sqlite"
    # sqlite: the database file
    path: str = "var/linectl.db"
    # postgresql: a libpq connection string or URI (or LINECTL_STORE__DSN); its password may
    # also come from PGPASSWORD or ~/.pgpass, as for any libpq client
    dsn: SecretStr | None = None
    # postgresql: the line's schema (default: linectl_<line id>); lines sharing a database must
    # each have their own
    db_schema: SchemaName | None = None
    # postgresql: wall seconds to wait for a connection at start-up before giving up
    connect_timeout: PositiveFloat = 10.0
    # a failed write is tried again after a jittered, doubling wait in wall seconds (a disk
    # recovers on wall time): from retry_initial up to retry_max
    retry_initial: PositiveFloat = 0.2
    retry_max: PositiveFloat = 10.0
    # order events kept in memory while the store cannot write, beyond which the line is held
    # (they are still kept: nothing that happened is dropped)
    backlog_limit: Annotated[int, Field(ge=1)] = 10_000

    @model_validator(mode="after")
    def _retry_bounds(self) -> StoreConfig:
        if self.backend == "postgresql" and not (self.dsn and self.dsn.get_secret_value()):
            raise ValueError(
                "store.backend postgresql needs store.dsn (or LINECTL_STORE__DSN), for example "
                "postgresql://linectl@db.example:5432/linectl"
            )
        if self.retry_max < self.retry_initial:
            raise ValueError(
                f"retry_max ({self.retry_max}) must be at least retry_initial "
                f"({self.retry_initial})"
            )
        return self


class FailoverConfig(Strict):
    """A standby controller for the line: two ``linectl run`` of one line file on one PostgreSQL
    store; the one holding the line's lease in the store is active, the other waits and takes
    over when the lease is not renewed in time."""

    enabled: bool = False
    # wall seconds a lease lasts without a renewal (as the database's clock counts them): the
    # longest a dead active controller keeps its standby waiting
    lease_seconds: PositiveFloat = 6.0
    # wall seconds between renewals by the active controller (and tries by the standby)
    renew_seconds: PositiveFloat = 1.5
    # this controller's name in the lease and the views (default: host name and process id)
    instance: Id | None = None
    # where clients reach this controller's API, as the other controller tells them (default:
    # http://<api.host>:<api.port> as this controller listens)
    api_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _renewals_fit(self) -> FailoverConfig:
        if self.renew_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"renew_seconds ({self.renew_seconds}) must be at most half of lease_seconds "
                f"({self.lease_seconds}): a lease must survive a missed renewal"
            )
        return self


Scope = Literal["orders:write", "orders:read", "line:operate"]
ALL_SCOPES: tuple[Scope, ...] = ("orders:write", "orders:read", "line:operate")


class ApiToken(Strict):
    token: Annotated[str, Field(min_length=16)]
    scopes: list[Scope] = Field(default_factory=lambda: list(ALL_SCOPES))
    # who holds the token, as the audit log names it (default: token-<position from 1>)
    name: Id | None = None


class ApiConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tokens: list[ApiToken] = Field(default_factory=list)
    # reads (orders, events, stock, the line) need a token with orders:read unless this is set
    reads_open: bool = False
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024

    def token_name(self, index: int) -> str:
        """The name of ``tokens[index]``: its own, else ``token-<index + 1>``."""
        return self.tokens[index].name or f"token-{index + 1}"

    @model_validator(mode="after")
    def _names_unique(self) -> ApiConfig:
        names = [self.token_name(i) for i in range(len(self.tokens))]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tokens: names must be unique, {', '.join(twice)} appear twice")
        return self


def _webhook_secret(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None:
        secret_key(secret.get_secret_value())  # raises ValueError with the reason
    return secret


class WebhookTarget(Strict):
    """A receiver of order events: every event, or only ``event_types``."""

    url: HttpUrl
    secret: SecretStr  # whsec_<base64> (Standard Webhooks) or a raw string
    event_types: list[Annotated[str, Field(min_length=1)]] | None = None

    _secret = field_validator("secret")(_webhook_secret)


ReceiverScheme = Literal["https", "http"]


def _https_only() -> list[ReceiverScheme]:
    return ["https"]


class WebhooksConfig(Strict):
    """Signed, retried delivery of order events (``webhooks.targets`` and ``callback_url``)."""

    targets: list[WebhookTarget] = Field(default_factory=list)
    callback_secret: SecretStr | None = None  # signs deliveries to an order's callback_url
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    initial_backoff: PositiveFloat = 1.0  # line seconds before the second attempt
    max_backoff: PositiveFloat = 300.0
    timeout: PositiveFloat = 5.0  # wall seconds per HTTP attempt
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4  # attempts in flight per receiver

    # who may receive deliveries, targets and callback_url alike (controller.webhooks.policy)
    allowed_schemes: Annotated[list[ReceiverScheme], Field(min_length=1)] = Field(
        default_factory=_https_only
    )
    allowed_hosts: list[str] = Field(default_factory=list)  # empty: any host
    allow_loopback: bool = False
    allow_private: bool = False

    _callback_secret = field_validator("callback_secret")(_webhook_secret)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            HostPattern.parse(host)  # raises ValueError with the reason
        return hosts

    @model_validator(mode="after")
    def _consistent(self) -> WebhooksConfig:
        urls = [str(t.url) for t in self.targets]
        if len(set(urls)) != len(urls):
            dup = next(u for u in urls if urls.count(u) > 1)
            raise ValueError(f"targets: url {dup} appears more than once")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be at least initial_backoff")
        return self


class OpcUaEndpoint(Strict):
    """Where the conveyor's OPC UA server is and how to talk to it (docs/opcua-model.md).

    ``Basic256Sha256`` always means SignAndEncrypt: signing alone would send the password of
    ``username`` readable by anyone on the cell network. Paths are PEM or DER files, relative
    to the working directory; ``linectl opcua certs`` writes a matching set.
    """

    endpoint: str = "opc.tcp://127.0.0.1:4840/linectl/"
    namespace: str = "urn:linectl:conveyors"
    security: Literal["None", "Basic256Sha256"] = "None"
    certificate: str | None = None  # the controller's own certificate ...
    private_key: str | None = None  # ... and its key (unencrypted)
    # the server's certificate, pinned; without it the one the server presents is taken
    server_certificate: str | None = None
    username: str | None = None
    password: SecretStr | None = None  # or LINECTL_CONVEYOR__OPCUA__PASSWORD

    @field_validator("endpoint")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return v
