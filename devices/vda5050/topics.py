"""VDA 5050 MQTT topic names: ``{interfaceName}/v2/{manufacturer}/{serialNumber}/{topic}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAJOR: Final = "v2"


def topic(interface_name: str, manufacturer: str, serial: str, subtopic: str) -> str:
    """The full topic of one robot's ``subtopic`` (``order``, ``state``, ...)."""
    return f"{interface_name}/{MAJOR}/{manufacturer}/{serial}/{subtopic}"


def fleet_filter(interface_name: str, subtopic: str) -> str:
    """A subscription filter for ``subtopic`` of every robot under ``interface_name``."""
    return f"{interface_name}/{MAJOR}/+/+/{subtopic}"


@dataclass(frozen=True)
class TopicParts:
    interface_name: str
    manufacturer: str
    serial: str
    subtopic: str


def split(full_topic: str) -> TopicParts | None:
    """Split a received topic into its levels; ``None`` if it is not a VDA 5050 v2 topic."""
    parts = full_topic.split("/")
    if len(parts) != 5 or parts[1] != MAJOR or not all(parts):
        return None
    return TopicParts(parts[0], parts[2], parts[3], parts[4])
