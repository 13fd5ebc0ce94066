"""What the revisions share: running a shipped SQL file, and reloading every function and view."""

from alembic import op

from .. import sqlfiles as _sqlfiles


def run_file(relpath: str) -> None:
    # straight to psycopg: the files hold % and : that SQLAlchemy's text() would try to interpret
    op.get_bind().connection.driver_connection.execute(_sqlfiles.read(relpath))


def load_functions() -> None:
    for relpath in _sqlfiles.install_order():
        run_file(relpath)
