"""The ``linectl`` command line, one module per group of commands (``main`` holds the
application)."""
