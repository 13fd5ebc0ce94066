"""ccsync 0.7: Sumehr claims on the cloud only, taken and recorded through functions; invalid documents.

Revision ID: 0007
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v7_sumehr.sql")
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
