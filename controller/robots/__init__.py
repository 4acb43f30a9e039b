"""Robots: releasing orders to them, their errands, what they report, failures, the take-over
at start, and traffic control."""
