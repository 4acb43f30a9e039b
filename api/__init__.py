"""The HTTP API of linectl (FastAPI)."""

from api.app import create_app
from api.backend import ApiBackend, AppState
from api.streams import stopping_event

__all__ = ["ApiBackend", "AppState", "create_app", "stopping_event"]
