"""Commissioning commands of ``linectl``, each a call to a running controller's API.

``linectl line hold|resume``, ``linectl conveyor jog``, ``linectl robot pause|resume|cancel``,
``linectl audit`` and ``linectl devices check --api``: every command goes through the API with a
bearer token, so the controller checks the token's scope and writes the call to its audit log.
Each prints one line (or the answer as JSON with ``--json``) and exits 0 when done, 1 when the
line refused or failed it, 2 on a usage or connection error, 3 when the token was refused.

The API is the one ``--api`` names, else ``LINECTL_API_URL``, else the one the line file given
with ``--config`` serves, else ``http://127.0.0.1:8080``
(:func:`controller.app.cli.common.api_url`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from controller.app.cli.common import ApiLineFileOpt, ApiOpt, TokenOpt, api_url

if TYPE_CHECKING:  # imported when used: the device stack is slow to import for every command
    from devices.check import DeviceReport

DONE, NOT_DONE, USAGE, DENIED = 0, 1, 2, 3

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, also when piped

AsJson = Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON.")]

line_app = typer.Typer(no_args_is_help=True, help="The whole line: its status, hold and resume.")
conveyor_app = typer.Typer(no_args_is_help=True, help="Conveyor commissioning.")
robot_app = typer.Typer(no_args_is_help=True, help="Pause, resume or cancel a robot's work.")


def register(app: typer.Typer) -> None:
    """Add the commissioning commands to ``app``."""
    app.add_typer(line_app, name="line")
    app.add_typer(conveyor_app, name="conveyor")
    app.add_typer(robot_app, name="robot")
    app.command("audit")(audit)


# --- calling the API --------------------------------------------------------------------------


def _exit(code: int, message: str) -> NoReturn:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def unreachable(api: str, exc: Exception, option: str = "--api or LINECTL_API_URL") -> str:
    """The one line for a controller that cannot be reached at ``api``: where, why, and what
    to do (``option`` is how the command is given the controller's URL)."""
    return (
        f"cannot reach the controller at {api}: {exc or type(exc).__name__} "
        f"(is linectl run serving there? its URL goes in {option})"
    )


def call(
    api: str,
    token: str | None,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> Any:
    """The JSON answer of a successful call; any other answer ends the command with its exit
    code (the problem's detail on stderr, or the problem as JSON on stdout with ``--json``)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=api, timeout=timeout) as client:
            resp = client.request(method, path, json=body, params=params, headers=headers)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        _exit(USAGE, f"--api {api}: {exc}")
    except httpx.HTTPError as exc:
        _exit(USAGE, unreachable(api, exc))
    try:
        answer = resp.json()
    except ValueError:
        _exit(USAGE, f"{method} {api}{path}: HTTP {resp.status_code}, not a linectl answer")
    if resp.is_success:
        return answer
    detail = answer.get("detail", "") if isinstance(answer, dict) else str(answer)
    if resp.status_code in (401, 403):
        hint = "" if token else " (give --token or set LINECTL_API_TOKEN)"
        _exit(DENIED, f"refused (HTTP {resp.status_code}): {detail}{hint}")
    code = NOT_DONE if resp.status_code == 409 or resp.status_code >= 500 else USAGE
    _exit(code, f"refused (HTTP {resp.status_code}): {detail}")


def _answer(answer: Any, as_json: bool, line: str, ok: bool = True) -> NoReturn:
    if as_json:
        print(json.dumps(answer, indent=2))
    else:
        out.print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(DONE if ok else NOT_DONE)


# --- line -------------------------------------------------------------------------------------


def _hold_line(answer: dict[str, Any], done: str) -> str:
    held = answer.get("held")
    what = f"line held by {held['by']} since {held['since']}" if held else "line running"
    if not answer["changed"]:
        what += f" (it already was {done})"
    missing = [d for d in answer["devices"] if d["result"] != "ok"]
    if not missing:
        return f"[green]{escape(what)}[/]; {len(answer['devices'])} devices ok"
    return f"[yellow]{escape(what)}[/]; not done on " + "; ".join(
        escape(f"{d['device']} {d['result']} ({d['detail']})") for d in missing
    )


@line_app.command("hold")
def line_hold(
    api: ApiOpt = None,
    token: TokenOpt = None,
    config: ApiLineFileOpt = None,
    as_json: AsJson = False,
) -> None:
    """Hold the conveyor, pause every robot and release no new orders (exit 1 when a device
    could not be held; the rest is held)."""
    answer = call(api_url(api, config), token, "POST", "/v1/line/hold")
    _answer(answer, as_json, _hold_line(answer, "held"), answer["complete"])


@line_app.command("resume")
def line_resume(
    api: ApiOpt = None,
    token: TokenOpt = None,
    config: ApiLineFileOpt = None,
    as_json: AsJson = False,
) -> None:
    """Unhold the conveyor, end the robots' pause and release orders again."""
    answer = call(api_url(api, config), token, "POST", "/v1/line/resume")
    _answer(answer, as_json, _hold_line(answer, "running"), answer["complete"])


# --- conveyor ---------------------------------------------------------------------------------


@conveyor_app.command("jog")
def conveyor_jog(
    zone: Annotated[str, typer.Argument(help="The zone to run, e.g. Z03.")],
    speed: Annotated[float, typer.Option(help="Belt speed (m/s).")],
    seconds: Annotated[float, typer.Option(help="How long the zone runs.")] = 2.0,
    conveyor: Annotated[
        str | None, typer.Option(help="Conveyor id (default: the line's conveyor).")
    ] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    config: ApiLineFileOpt = None,
    as_json: AsJson = False,
) -> None:
    """Run one conveyor zone for a while (the conveyor must not be in Execute: hold it first)."""
    api = api_url(api, config)
    if conveyor is None:
        view = call(api, token, "GET", "/v1/line")
        conveyor = str(view["conveyors"][0]["conveyor_id"])
    answer = call(
        api,
        token,
        "POST",
        f"/v1/conveyors/{conveyor}/zones/{zone}/jog",
        body={"speed": speed, "seconds": seconds},
    )
    line = f"jogging {conveyor} zone {zone} at {speed:g} m/s for {seconds:g} s"
    _answer(answer, as_json, escape(line))


# --- robots -----------------------------------------------------------------------------------


def _robot_command(command: str, doc: str) -> Callable[..., None]:
    def run(
        serial: Annotated[str, typer.Argument(help="The robot's serial number.")],
        api: ApiOpt = None,
        token: TokenOpt = None,
        config: ApiLineFileOpt = None,
        as_json: AsJson = False,
    ) -> None:
        answer = call(api_url(api, config), token, "POST", f"/v1/robots/{serial}/{command}")
        _answer(answer, as_json, escape(f"robot {serial}: {command} sent ({answer['action_id']})"))

    run.__doc__ = doc
    return run


for _command, _doc in (
    ("pause", "Pause a robot (VDA 5050 startPause)."),
    (
        "resume",
        "End a robot's pause (VDA 5050 stopPause); a robot that needed an operator for "
        "rejected orders or cancels is back in use.",
    ),
    ("cancel", "Cancel a robot's order; its orders go back to the queue."),
):
    robot_app.command(_command)(_robot_command(_command, _doc))


# --- audit ------------------------------------------------------------------------------------


def audit(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest entries shown.")] = 20,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. line.hold.")] = None,
    who: Annotated[str | None, typer.Option(help="Only calls with this token name.")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    config: ApiLineFileOpt = None,
    as_json: AsJson = False,
) -> None:
    """The controller's audit log of operator commands, newest first."""
    params = {"limit": limit, "action": action, "who": who}
    answer = call(
        api_url(api, config),
        token,
        "GET",
        "/v1/audit",
        params={k: v for k, v in params.items() if v is not None},
    )
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    table = Table(title="audit log (UTC)", title_justify="left")
    for column in ("seq", "at", "who", "action", "target", "result", "status"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    colours = {"ok": "green", "refused": "yellow", "failed": "red"}
    for e in answer["entries"]:
        result = f"[{colours.get(e['result'], 'white')}]{escape(e['result'])}[/]"
        at = str(e["at"])[:19].replace("T", " ")  # UTC, to the second
        fields = (e["seq"], at, e["who"], e["action"], e["target"])
        table.add_row(
            *(escape(str(f)) for f in fields), result, str(e["status"]), escape(e["detail"])
        )
    out.print(table)


# --- devices check ----------------------------------------------------------------------------


def check_via_api(
    api: str, token: str | None, wait: float, connect_timeout: float
) -> list[DeviceReport]:
    """``linectl devices check --api``: the controller checks its devices; its reports."""
    answer = call(
        api,
        token,
        "POST",
        "/v1/devices/check",
        params={"wait": wait, "connect_timeout": connect_timeout},
        timeout=wait + 2 * connect_timeout + 30,
    )
    try:
        return [_report(d) for d in answer["devices"]]
    except (KeyError, TypeError, ValueError) as exc:
        _exit(USAGE, f"the controller's device reports cannot be read: {exc}")


def _report(d: dict[str, Any]) -> DeviceReport:
    from devices.check import DeviceReport, Finding, Status

    findings = tuple(Finding(f["item"], Status(f["status"]), f["detail"]) for f in d["findings"])
    return DeviceReport(d["device"], d["address"], findings, tuple(d["facts"].items()))
