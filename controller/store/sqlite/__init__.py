"""The SQLite order store: one file, every write committed before it is acknowledged."""
