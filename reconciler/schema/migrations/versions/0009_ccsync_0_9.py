"""ccsync 0.9: the status light's facts, folded history runs, display labels, the panel's sessions.

Revision ID: 0009
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v9_panel.sql")
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
