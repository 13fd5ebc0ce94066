"""ccsync 0.5: capture triggers that skip the reconciler's set-wise apply (journaled from its stage).

Revision ID: 0005
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # ccsync.track first: the file below re-tracks every table with it
    run_file("revisions/v5_bulk.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
