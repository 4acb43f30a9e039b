"""The KPI report of an order database: the rows it reads, the KPIs, the HTML page."""
