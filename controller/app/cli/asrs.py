"""``linectl asrs estimate``: the expected cycle times and cycles per hour of an AS/RS crane,
from the rack and crane given or taken from a line file (see
:mod:`controller.app.asrs_estimate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from controller.app.cli.common import err, out
from controller.linefile.loader import ConfigError, load

asrs_app = typer.Typer(no_args_is_help=True, help="AS/RS sizing.")


def register(app: typer.Typer) -> None:
    """Add ``linectl asrs`` to ``app``."""
    app.add_typer(asrs_app, name="asrs")


@asrs_app.command("estimate")
def asrs_estimate(
    length: Annotated[float | None, typer.Option(help="Rack length along the aisle (m).")] = None,
    height: Annotated[float | None, typer.Option(help="Rack height (m).")] = None,
    vx: Annotated[
        float | None, typer.Option("--vx", help="Crane speed along the aisle (m/s).")
    ] = None,
    vy: Annotated[float | None, typer.Option("--vy", help="Hoist speed (m/s).")] = None,
    ax: Annotated[
        float | None, typer.Option("--ax", help="Acceleration along the aisle (m/s², 0: none).")
    ] = None,
    ay: Annotated[
        float | None, typer.Option("--ay", help="Hoist acceleration (m/s², 0: none).")
    ] = None,
    pd: Annotated[
        float | None, typer.Option("--pd", help="Seconds per pick-up or deposit (default 5).")
    ] = None,
    bays: Annotated[int | None, typer.Option(help="Bays (default: length / 0.7 m).")] = None,
    levels: Annotated[int | None, typer.Option(help="Levels (default: height / 0.5 m).")] = None,
    samples: Annotated[int, typer.Option(min=2, help="Monte Carlo cycles of each kind.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the Monte Carlo run.")] = 7,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Rack and crane from this line file (crane options given replace its values).",
        ),
    ] = None,
    aisle: Annotated[
        str | None, typer.Option(help="Aisle of the line file (default: the first).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Expected single- and dual-command cycle times and cycles per hour of a crane under random
    storage: the Bozer-White model, the exact mean over the rack's locations, and a Monte Carlo
    run of the crane kinematics the simulator uses. Exit 2 on bad input."""
    from controller.app import asrs_estimate as est
    from routing.asrs_model import rack_of_size

    def fail(message: str) -> NoReturn:
        err.print(f"error: {message}", markup=False, highlight=False)
        raise typer.Exit(2)

    try:
        if config is not None:
            given = [
                n
                for n, v in (
                    ("--length", length),
                    ("--height", height),
                    ("--bays", bays),
                    ("--levels", levels),
                )
                if v is not None
            ]
            if given:
                fail(
                    f"{', '.join(given)} cannot be used with --config "
                    "(the rack comes from the line file)"
                )
            try:
                line = load(config)
            except ConfigError as exc:
                err.print(exc.render(), markup=False, highlight=False)
                raise typer.Exit(2) from None
            rack, crane = est.from_line(line, aisle)
            k = est.kinematics(
                crane.speed_x if vx is None else vx,
                crane.speed_y if vy is None else vy,
                crane.accel_x if ax is None else ax,
                crane.accel_y if ay is None else ay,
                crane.pd_time if pd is None else pd,
            )
        else:
            if aisle is not None:
                fail("--aisle needs --config")
            missing = [
                n
                for n, v in (("--length", length), ("--height", height), ("--vx", vx), ("--vy", vy))
                if v is None
            ]
            if missing:
                fail(
                    f"give {', '.join(missing)} "
                    "(or --config FILE to take the rack and crane from a line file)"
                )
            assert length is not None and height is not None and vx is not None and vy is not None
            k = est.kinematics(vx, vy, ax or 0.0, ay or 0.0, 5.0 if pd is None else pd)
            rack = rack_of_size(length, height, bays, levels)
        result = est.estimate(rack, k, samples, seed)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(est.as_dict(result), indent=2))
    else:
        out.print(est.table(result))
