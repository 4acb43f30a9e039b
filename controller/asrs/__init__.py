"""The AS/RS: tote transports and crane commands, case picks, replenishment and tote returns."""
