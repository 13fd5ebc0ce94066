"""The ccsync schema in a database: install, upgrade and uninstall (Alembic), and which tables are tracked."""
