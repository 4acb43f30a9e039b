"""Load a line file: YAML -> environment overrides -> pydantic -> cross checks.

The YAML is read by :mod:`kernel.config.safe_yaml`: limited in size, nesting and alias
expansion, and a key given twice is an error.

Every problem is reported as ``file:line: path: message`` so an engineer can jump to it.
Environment variables ``LINECTL_<SECTION>__<KEY>`` override values (``__`` separates levels,
for example ``LINECTL_STORE__PATH=/data/line.db`` or ``LINECTL_API__PORT=9000``); the value is
parsed as a YAML scalar (a ``PASSWORD`` is taken as written). ``LINECTL_API_TOKEN`` adds one
token with every scope, named ``env``. A problem with a value from the environment is reported
under the variable's name (``LINECTL_API__PORT: api.port: ...``), and no problem repeats a
secret's value. A ``LINECTL_`` variable that is no override (``LINECTL_STORE_PATH`` for
``LINECTL_STORE__PATH``) is warned about in one line when the file is loaded, unless another
part of linectl reads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.linefile.checks import Issue, cross_check
from controller.linefile.mqtt_checks import mqtt_files
from kernel.config import safe_yaml
from kernel.config.model import LineConfig
from kernel.config.mqtt import url_problem
from kernel.config.safe_yaml import YamlRefused

log = logging.getLogger(__name__)

ENV_PREFIX = "LINECTL_"
API_TOKEN = "API_TOKEN"  # LINECTL_API_TOKEN: one more token, with every scope
API_TOKENS = "API_TOKENS"  # LINECTL_API_TOKENS: the whole api.tokens list
# LINECTL_ variables that are no settings of the line file: the command line's controller URL,
# and the test suite's switches (LINECTL_REQUIRE_*, LINECTL_TEST_*, LINECTL_FAILOVER_SEED)
NOT_SETTINGS = frozenset({"API_URL", "FAILOVER_SEED"})
NOT_SETTINGS_PREFIXES = ("REQUIRE_", "TEST_")
REFERENCE_LINE = Path(__file__).with_name("reference-line.yaml")
# taken as written, not as YAML: a password 0123 must not turn into the number 83
VERBATIM_KEYS = frozenset({"password"})
# settings whose value an error message never repeats (every SecretStr of the model, and the
# API tokens)
SECRET_KEYS = VERBATIM_KEYS | {"token", "secret", "callback_secret", "dsn"}


@dataclass(frozen=True)
class Located:
    """An issue with the line (1-based) it was found at, if known, or the environment variable
    its value came from."""

    issue: Issue
    line: int | None
    variable: str | None = None

    def render(self, source: str) -> str:
        if self.variable is not None:
            where = self.variable
        else:
            where = f"{source}:{self.line}" if self.line else source
        path = ".".join(str(p) for p in self.issue.path) or "(document)"
        return f"{where}: {path}: {self.issue.message}"


class ConfigError(Exception):
    """A line file that cannot be used, with every problem found."""

    def __init__(self, source: str, problems: list[Located]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)


def _refused(source: str, exc: YamlRefused) -> ConfigError:
    return ConfigError(source, [Located(Issue(p.path, p.message), p.line) for p in exc.problems])


def _locate(index: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    p = tuple(path)
    while p:
        if p in index:
            return index[p]
        p = p[:-1]
    return index.get(())


def _env_value(name: str, raw: str) -> Any:
    """An environment variable's value as YAML, within the file's limits."""
    try:
        return safe_yaml.load_scalar(raw)
    except YamlRefused as exc:
        raise _refused(name, exc) from None


Origins = dict[tuple[Any, ...], str]  # a path of the document -> the variable that set it


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> Origins:
    """Apply the overrides of ``env`` to ``data``; which variable set which path."""
    origins: Origins = {}
    # LINECTL_API_TOKEN last: it adds to the list LINECTL_API_TOKENS may set
    names = [n for n in env if n.startswith(ENV_PREFIX)]
    for name in sorted(names, key=lambda n: n == ENV_PREFIX + API_TOKEN):
        raw = env[name]
        key = name[len(ENV_PREFIX) :]
        if key == API_TOKEN:
            if raw:
                api = data.setdefault("api", {})
                tokens = api.setdefault("tokens", [])
                tokens.append({"token": raw, "name": "env"})
                origins["api", "tokens", len(tokens) - 1] = name
            continue
        if key == API_TOKENS:
            parsed = _env_value(name, raw)
            data.setdefault("api", {})["tokens"] = parsed
            origins["api", "tokens"] = name
            continue
        parts = [p.lower() for p in key.split("__") if p]
        if len(parts) < 2:
            _not_a_setting(name, key)
            continue
        cursor: dict[str, Any] = data
        for part in parts[:-1]:
            nxt = cursor.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                cursor[part] = nxt
            cursor = nxt
        if parts[-1] in VERBATIM_KEYS:
            cursor[parts[-1]] = raw
        else:
            cursor[parts[-1]] = _env_value(name, raw) if raw != "" else ""
        origins[tuple(parts)] = name
    return origins


def _not_a_setting(name: str, key: str) -> None:
    """Warn that ``name`` sets nothing, unless another part of linectl reads it."""
    if key in NOT_SETTINGS or key.startswith(NOT_SETTINGS_PREFIXES):
        return
    log.warning(
        f"environment variable {name} matches no setting and is ignored "
        f"(overrides are {ENV_PREFIX}<SECTION>__<KEY>, for example {ENV_PREFIX}API__PORT)",
        extra={"variable": name},
    )


def _origin(
    index: Mapping[tuple[Any, ...], int], origins: Origins, path: tuple[Any, ...]
) -> str | None:
    """The variable that set ``path`` or a section holding it, or made a section of
    ``path`` that the file does not have (``LINECTL_STOER__PATH``: ``stoer``), if one did."""
    p = tuple(path)
    while p:
        if p in origins:
            return origins[p]
        p = p[:-1]
    if path and tuple(path) not in index:
        return next((v for o, v in origins.items() if o[: len(path)] == tuple(path)), None)
    return None


def _place(index: Mapping[tuple[Any, ...], int], origins: Origins, issue: Issue) -> Located:
    variable = _origin(index, origins, issue.path)
    if variable is not None:
        return Located(issue, None, variable)
    return Located(issue, _locate(index, issue.path))


def _secret(loc: tuple[Any, ...], value: object) -> bool:
    """A value an error message must not repeat: a password, token or other secret, a URL
    that holds one, or a section that holds either."""
    if loc and loc[-1] in SECRET_KEYS:
        return True
    if isinstance(value, dict):
        return any(_secret((*loc, k), v) for k, v in value.items())
    if isinstance(value, list):
        return any(_secret(loc, v) for v in value)
    return isinstance(value, str) and "@" in value and url_problem(value) is not None


def parse(text: str, source: str, env: Mapping[str, str] | None = None) -> LineConfig:
    """Parse a line file's text; raise :class:`ConfigError` listing every problem."""
    try:
        doc = safe_yaml.load(text)
    except YamlRefused as exc:
        raise _refused(source, exc) from None
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError(
            source, [Located(Issue((), "the document must be a mapping of sections"), 1)]
        )
    index = doc.lines
    origins = _apply_env(data, os.environ if env is None else env)
    try:
        cfg = LineConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            if (
                "input" in err
                and err["type"] not in {"missing", "extra_forbidden"}
                and not _secret(loc, err["input"])
            ):
                shown = repr(err["input"])
                if len(shown) <= 60:
                    msg = f"{msg} (got {shown})"
            problems.append(_place(index, origins, Issue(loc, msg)))
        raise ConfigError(source, problems) from None
    issues = cross_check(cfg) + mqtt_files(cfg.mqtt)
    if issues:
        raise ConfigError(source, [_place(index, origins, i) for i in issues])
    return cfg


def load(path: str | Path, env: Mapping[str, str] | None = None) -> LineConfig:
    """Read and parse a line file."""
    p = Path(path)
    try:
        text = safe_yaml.read_text(p)
    except YamlRefused as exc:
        raise _refused(str(p), exc) from None
    except OSError as exc:
        raise ConfigError(
            str(p), [Located(Issue((), f"cannot read file: {exc.strerror}"), None)]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), [Located(Issue((), "file is not UTF-8 text"), None)]) from None
    return parse(text, str(p), env)


def load_reference(env: Mapping[str, str] | None = None) -> LineConfig:
    """The reference line that ships with linectl."""
    return load(REFERENCE_LINE, env)
