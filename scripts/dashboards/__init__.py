"""The Grafana dashboards of deploy/grafana/dashboards/ as code, one module per dashboard.

:mod:`dashboards.panels` builds panels, targets and value mappings; :mod:`dashboards.layout`
places them and wraps them in a dashboard. ``scripts/gen-dashboards.py`` renders every dashboard
to its JSON file (and puts this package on the import path).
"""
