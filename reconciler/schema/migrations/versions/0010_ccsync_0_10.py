"""ccsync 0.10: capture keeps every write of a table altered since it was tracked (no more CC020).

Revision ID: 0010
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # ccsync.capture_function_sql first: the file below uses it
    run_file("revisions/v10_capture.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
