"""The controller service: everything that runs for one line, in one task group, taking the
orders through the robots, the conveyor and the AS/RS to their end."""
