"""ccsync 0.2: sync positions, conflicts, status and history.

Revision ID: 0002
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v2_sync.sql")
    load_functions()
    run_file("revisions/v2_triggers.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
