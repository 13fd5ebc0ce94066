"""ccsync 0.12: one record per conflicting change, refused transactions, decisions settled on the cloud;
every capture function written again (a TRUNCATE on a PC journals what of the cloud it had; tables with a virtual
generated column).

Revision ID: 0012
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v12_decisions.sql")
    load_functions()
    run_file("revisions/capture_functions.sql")  # with the ccsync.capture_function_sql loaded above


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
