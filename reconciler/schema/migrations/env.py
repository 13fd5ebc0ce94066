"""Alembic environment of ccsync: our own version table in our own schema, and nothing outside it.

The connection is handed in by reconciler.install (no alembic.ini is needed); the version table lives in
schema ccsync, so ccsync's migrations never see or touch the application's tables.
"""

from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
connection.execute(text("create schema if not exists ccsync"))
context.configure(
    connection=connection,
    version_table="alembic_version",
    version_table_schema="ccsync",
    include_object=lambda obj, name, type_, reflected, compare_to: getattr(obj, "schema", None) == "ccsync",
)
with context.begin_transaction():
    context.run_migrations()
