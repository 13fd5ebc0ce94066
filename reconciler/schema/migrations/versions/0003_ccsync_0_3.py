"""ccsync 0.3: Sumehr publication state on the regional HUB (replicated).

Revision ID: 0003
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v3_sumehr.sql")
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
