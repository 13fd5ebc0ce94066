"""ccsync 0.8: generated, statement-level capture of full row images in canonical form; journal depth.

Revision ID: 0008
"""

from reconciler.schema.migrations._sql import load_functions, run_file

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_file("revisions/v8_prepare.sql")
    load_functions()  # ccsync.track and the conversion first: the file below uses them
    run_file("revisions/v8_capture.sql")


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
