"""Pure routing decisions: sortation, robot dispatch, paths. No I/O, no clock, no frameworks."""
