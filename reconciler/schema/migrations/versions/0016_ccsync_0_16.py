"""ccsync 0.16: a bulk statement's capture without JIT and with room to pair its rows in memory (issue 16). Each
capture function runs with jit = off and work_mem = 64MB: the journal insert of a 100,000-row update was costed
as fifty million rows (the planner cannot estimate the pairing of the transition tables), so JIT compiled it
(about 0.5 s on a server with JIT, as Debian's PostgreSQL 15 has), and its two sorts spilled to disk. No table
changes: every tracked table's capture function is written again (CREATE OR REPLACE FUNCTION only: no lock on the
tracked tables).

Revision ID: 0016
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()
    run_file("revisions/capture_functions.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
