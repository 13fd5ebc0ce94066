"""The ccsync schema in a database: install, upgrade and uninstall (Alembic), and which tables are tracked.

HEAD is the revision this ccsync needs; a test checks that it is the Alembic head, so that connecting never
has to load Alembic to compare a database's revision with it.
"""

HEAD = "0016"
