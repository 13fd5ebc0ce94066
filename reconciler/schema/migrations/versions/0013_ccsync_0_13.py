"""ccsync 0.13: a conflict record and a refusal record enter ccsync.conflicts through one function
(ccsync.insert_conflict); nothing else changes.

Revision ID: 0013
"""

from reconciler.schema.migrations._sql import load_functions

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions()


def downgrade() -> None:
    raise NotImplementedError("ccsync does not downgrade: use `ccsync uninstall`")
