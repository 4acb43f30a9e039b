"""Simulated VDA 5050 picking robots, each a real MQTT peer."""

from simulators.robots.fleet import RobotFleetSimulator

__all__ = ["RobotFleetSimulator"]
