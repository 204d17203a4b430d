"""Storage on SQLAlchemy 2 Core: the same code on SQLite (embedded) and PostgreSQL."""
