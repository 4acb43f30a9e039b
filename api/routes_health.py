"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client.exposition import choose_encoder

from api import examples
from api.backend import ApiBackend, backend_dependency
from api.problems import ProblemError, problem_responses
from api.schemas import ControllerOut, Liveness, Readiness

router = APIRouter(tags=["operations"])

Backend = Annotated[ApiBackend, Depends(backend_dependency)]


@router.get(
    "/livez",
    response_model=Liveness,
    summary="Liveness",
    description="200 while the process serves requests. Restart the service if this fails.",
    responses=examples.json_example(examples.LIVE),
)
async def livez() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    description=(
        "200 when the service can take orders: `config` (the line file is loaded and valid), "
        "`store` (the order store answers and takes writes) and `intake` (the controller runs "
        "and takes what the API accepts). Otherwise 503 with a problem naming the checks that "
        "fail (`not_ready`), why where known (`reasons`, also in `detail`, e.g. `store: writes "
        "failing since ...: database or disk is full`) and the full map (`checks`). Device "
        "outages do not make the service unready: orders are taken and wait; outages show in "
        "`GET /v1/line` and the metrics. `controller` says which role this controller holds: "
        "on a line with a standby both controllers are ready (both take orders; the active "
        "one serves them); `?role=active` makes the standby answer 503 (`not_ready: "
        '["role"]`), for a load balancer that sends operator commands to the active one.'
    ),
    responses={**examples.json_example(examples.READY), **problem_responses(422, 503)},
)
async def readyz(
    backend: Backend,
    role: Annotated[
        Literal["active", "standby"] | None,
        Query(description="Ready only in this role (`active`: commanding the line)."),
    ] = None,
) -> Readiness:
    checks = dict(await backend.readiness())
    controller = ControllerOut.model_validate(backend.controller())
    if role is not None:
        checks["role"] = controller.role == role
    missing = sorted(name for name, ok in checks.items() if not ok)
    if missing:
        known = dict(backend.readiness_reasons())
        if role is not None and controller.role != role:
            known["role"] = f"this controller is the {controller.role}, not the {role}"
        reasons = {name: known[name] for name in missing if name in known}
        named = [f"{name}: {reasons[name]}" if name in reasons else name for name in missing]
        raise ProblemError(
            503,
            f"Not ready: {'; '.join(named)}",
            kind="not-ready",
            extra={
                "not_ready": missing,
                "checks": checks,
                "reasons": reasons,
                "controller": controller.model_dump(mode="json"),
            },
        )
    return Readiness(ready=True, checks=checks, controller=controller)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Every `linectl_` metric, with `linectl_build_info` and the process's `process_*` and "
        "`python_*` metrics, in the Prometheus text format (OpenMetrics when the scraper asks "
        "for it in `Accept`)."
    ),
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, backend: Backend) -> Response:
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(backend.metrics.registry), media_type=content_type)
