"""ccsync 0.10: capture keeps every write of a table altered since it was tracked (no more CC020).

No table changes: every tracked table's capture function is written again; it compares the table's shape per
statement and captures an altered table through the same statement written from the catalog as it is now.

Revision ID: 0010
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # ccsync.capture_function_sql first: the file below uses it
    run_file("revisions/capture_functions.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
