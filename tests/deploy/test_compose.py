"""The compose stack, checked without a container engine: files, services, ports, targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICES = {"mosquitto", "linectl", "wms", "prometheus", "grafana"}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_services_have_an_image_or_a_build_that_exists() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    built = set()
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert (context / svc["build"]["dockerfile"]).is_file(), name
            assert (context / "pyproject.toml").is_file(), "the build context is the repository"
            built.add(svc["image"])
    # the WMS load runs from the image the linectl service builds
    assert services["wms"]["image"] in built


def test_bind_mounts_name_files_in_the_repository() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in compose()["volumes"], f"{name}: named volume {source}"


def test_ports_are_published_as_host_and_container() -> None:
    published: dict[str, str] = {}
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            host, container = str(port).split(":")
            assert host.isdigit() and container.isdigit(), f"{name}: {port}"
            assert host not in published, f"{name} and {published.get(host)} publish {host}"
            published[host] = name
    assert published == {
        "1883": "mosquitto",
        "8080": "linectl",
        "9090": "prometheus",
        "3000": "grafana",
    }


def test_prometheus_scrapes_the_linectl_service() -> None:
    services = compose()["services"]
    command = services["linectl"]["command"]
    assert option(command, "--host") == "0.0.0.0"  # reachable from the other containers
    port = option(command, "--port")
    assert f"8080:{port}" in services["linectl"]["ports"]
    assert "--simulate" in command
    # the simulated robots and the controller meet on the stack's Mosquitto
    assert option(command, "--broker") == "mqtt://mosquitto:1883"
    assert "1883:1883" in services["mosquitto"]["ports"]
    assert "mosquitto" in services["linectl"]["depends_on"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "linectl" and job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"linectl:{port}"]
    # the target names its line, the id of the line file the service runs: the dashboards'
    # Line variable lists it and every panel filters by it
    line_file = option(command, "--config").removeprefix("/app/")
    line_id = yaml.safe_load((DEPLOY.parent / line_file).read_text())["line"]["id"]
    assert job["static_configs"][0]["labels"] == {"line": line_id}
    assert "line" not in config["global"].get("external_labels", {})
    # the rules the alerts come from are in the folder compose mounts as /etc/prometheus
    assert config["rule_files"] == ["rules/*.yml"]
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    # the WMS load and the health check talk to the same port
    assert option(services["wms"]["command"], "--api") == f"http://linectl:{port}"
    assert f"127.0.0.1:{port}/readyz" in " ".join(services["linectl"]["healthcheck"]["test"])


def test_line_file_and_token_are_what_the_service_needs() -> None:
    services = compose()["services"]
    line_file = option(services["linectl"]["command"], "--config")
    assert line_file == "/app/examples/reference-line.yaml"
    assert (DEPLOY.parent / "examples" / "reference-line.yaml").is_file()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "COPY examples ./examples" in dockerfile and "pip install ." in dockerfile
    # one token with every scope: the WMS sends orders, the simulated stations verify totes
    assert services["linectl"]["environment"]["LINECTL_API_TOKEN"]
    assert (
        services["wms"]["environment"]["LINECTL_API_TOKEN"]
        == (services["linectl"]["environment"]["LINECTL_API_TOKEN"])
    )


def test_mosquitto_listens_on_the_published_port() -> None:
    conf = (DEPLOY / "mosquitto" / "demo.conf").read_text().splitlines()
    assert "listener 1883" in conf
