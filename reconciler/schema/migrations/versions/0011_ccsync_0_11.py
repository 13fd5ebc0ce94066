"""ccsync 0.11: a cheaper capture: one notification per transaction, the capture settings only where they matter.

Revision ID: 0011
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # ccsync.capture_function_sql and ccsync.notify_journal first: the file below uses them
    run_file("revisions/v11_capture.sql")
    run_file("revisions/capture_functions.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
