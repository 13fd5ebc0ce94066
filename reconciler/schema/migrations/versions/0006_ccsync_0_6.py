"""ccsync 0.6: roles (a PC's role on the cloud, apply roles, application roles) and installation ids.

Revision ID: 0006
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v6_roles.sql")
    load_functions()
    run_file("revisions/v6_retrack.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
