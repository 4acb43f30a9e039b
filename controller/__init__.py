"""The controller, one package per concept, layered from the order model (``orders``) through the
store, webhooks, the shared line state (``line``), the AS/RS, the conveyor and the robots up to
the service; the application layer (``app``) is on top. The import contracts in
``pyproject.toml`` hold the order."""
