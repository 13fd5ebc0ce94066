"""ccsync 0.15: a capture with fewer queries per statement (issue 16). Each capture function takes its clock value,
the age of its session's last notification and, on a node, whether the session applies, as plain PL/pgSQL
expressions instead of queries (the apply roles are read only when the session says it applies). No table
changes: ccsync.capture_sql takes the clock value as a parameter, and every tracked table's capture function is
written again (CREATE OR REPLACE FUNCTION only: no lock on the tracked tables).

Revision ID: 0015
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # its ccsync.capture_sql file drops the five-parameter form first
    run_file("revisions/capture_functions.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
