"""The application layer: the ``linectl`` command line, the one-process demo, the runner that
serves the API beside the controller service, and the KPI reports. Nothing below it imports it."""
