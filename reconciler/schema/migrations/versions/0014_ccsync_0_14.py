"""ccsync 0.14: cheaper bulk capture (issue 16). A table whose columns' JSON form is their own value has its row
images made by to_jsonb(row) instead of jsonb_build_object of every column, and an update is told from a no-op by
comparing its images as jsonb first (their text only when equal). No table changes: every tracked table's capture
function is written again (CREATE OR REPLACE FUNCTION only: no lock on the tracked tables).

Revision ID: 0014
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()  # ccsync.capture_sql first: the file below writes the capture functions with it
    run_file("revisions/capture_functions.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
