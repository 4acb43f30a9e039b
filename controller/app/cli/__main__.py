"""``python -m controller.app.cli``: the same as ``linectl``."""

from controller.app.cli.main import main

main()
