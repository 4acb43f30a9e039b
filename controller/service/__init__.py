"""The controller service: its one task group, the orchestrator that takes orders through the
robots, the conveyor and the AS/RS to the end, the start-up after a stop, deadlines and the
operator's hold."""
