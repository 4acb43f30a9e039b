"""The PostgreSQL order store: each line in a schema of its own, every write committed before it
is acknowledged, writes of one line serialised across every process that shares the database."""
