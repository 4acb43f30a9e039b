"""The conveyor and sorter: scan-to-divert decisions, tracking items, the reject chute's totes."""
