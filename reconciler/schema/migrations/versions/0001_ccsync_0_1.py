"""ccsync 0.1: identity, tracked tables, hybrid logical clock, journal and capture triggers.

Revision ID: 0001
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v1_core.sql")
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
