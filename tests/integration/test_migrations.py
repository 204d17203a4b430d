"""The migrations create exactly the schema the code declares, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from restitution.adapters.db.engine import Database, head_revision, is_up_to_date
from restitution.adapters.db.tables import metadata


def test_migrated_schema_matches_the_tables_the_code_uses(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
        assert is_up_to_date(db)
        assert head_revision() is not None
    finally:
        db.dispose()
