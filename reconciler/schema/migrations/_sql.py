"""What the revisions share: running a shipped SQL file, and reloading every function, view and privilege."""

from alembic import op

from .. import sqlfiles as _sqlfiles


def run_file(relpath: str) -> None:
    # straight to psycopg: the files hold % and : that SQLAlchemy's text() would try to interpret
    op.get_bind().connection.driver_connection.execute(_sqlfiles.read(relpath))


def load_functions() -> None:
    # bodies unchecked while loading, as pg_dump does: the current functions may read tables of later revisions
    op.get_bind().connection.driver_connection.execute("set local check_function_bodies = off")
    for relpath in _sqlfiles.install_order():
        run_file(relpath)
    op.get_bind().connection.driver_connection.execute("set local check_function_bodies = on")
