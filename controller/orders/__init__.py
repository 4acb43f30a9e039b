"""The order model: the WMS's order body, statuses, history events and the stored record."""
