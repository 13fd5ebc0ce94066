"""Whether a push or a pull has anything to do: one indexed look at a journal, for the service.

The service looks four times a second and whenever a notification comes. A full pull for each look would
plan an empty window most of the time: the service's own pushes move the cloud's journal too (the cloud's
triggers journal every pushed change again, for the other PCs), and a pull skips those. The look answers
"anything new for this side?" from the journal itself, with the rule of a pull's (or push's) window:

- `Look.seen` is a snapshot of the source (the cloud for a pull, the node for a push) such that every entry the
  direction wants and that is visible in it has been applied, or is being applied by the run this look started;
- a look takes the source's current snapshot S and, in the same statement (so with the same visibility), asks
  whether an entry the direction wants is visible in S but not in `seen`: an entry of a transaction still in
  progress at `seen` is found at the first look after its commit, notified or not (a session notifies at most
  every 50 ms, and the journal sequence moves at insert, not at commit);
- nothing there: `seen` becomes S at once. Something there: the caller runs the direction and, once that ended
  without an error, calls `done()`, which makes S `seen` (the run's window covered S: it was taken later).

The scan reads the `txid` index for the transactions `seen` did not show: the entries since the previous look.
"""

from __future__ import annotations

import psycopg

__all__ = ["Look"]

# the window's rule (journal.WINDOW: since = seen, upto = the statement's snapshot; WANTED: not the target's own).
# "Not visible in seen" written as two index conditions: a transaction at or after its xmax, or in progress then.
# (As `txid >= xmin and not visible`, a transaction held open for an hour would make every look scan the hour.)
_NEW = """
select pg_current_snapshot()::text,
       exists (select 1 from ccsync.journal j
                where (j.txid >= pg_snapshot_xmax(%(seen)s::pg_snapshot)
                       or j.txid = any (array(select pg_snapshot_xip(%(seen)s::pg_snapshot))))
                  and j.origin <> %(exclude)s
                  and (j.target is null or j.target = %(exclude)s))
"""


class Look:
    """The looks of one direction at its source. `exclude`: the origin the direction skips (a pull: the node's
    own changes on the cloud), '' for a push, which takes every entry of the node's journal."""

    def __init__(self, exclude: str = ""):
        self.exclude = exclude
        self.seen: str | None = None  # None: not known yet, so there is work (a first run covers everything)
        self._next: str | None = None

    def anything(self, src: psycopg.Connection) -> bool:
        """Whether the direction has something to do: committed entries it wants that `seen` did not show."""
        if self.seen is None:
            self._next = src.execute("select pg_current_snapshot()::text").fetchone()[0]
            return True
        snapshot, new = src.execute(_NEW, {"seen": self.seen, "exclude": self.exclude}).fetchone()
        if new:
            self._next = snapshot
        else:
            self.seen, self._next = snapshot, None
        return new

    def done(self) -> None:
        """The run that the last look started has ended without an error: what that look saw is applied."""
        if self._next is not None:
            self.seen, self._next = self._next, None

    def forget(self) -> None:
        """Something may have moved the direction's position back (a new connection, an error): look from scratch."""
        self.seen = self._next = None
