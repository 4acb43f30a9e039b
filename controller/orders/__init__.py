"""Orders: the WMS's order model, their history and journal, and the value-added stations."""
