"""ccsync 0.4: the admin panel's users.

Revision ID: 0004
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v4_panel.sql")
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
