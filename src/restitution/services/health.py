"""Whether the service can do its work: the database answers."""

from __future__ import annotations

from restitution.adapters.db.health import ping
from restitution.services.context import App


def check_database(app: App) -> None:
    """Raises when the database cannot be reached."""
    with app.db.transaction(write=False) as conn:
        ping(conn)
