"""The names ccsync stores and shows for conflicts: their kinds and the tables' conflict policies (one owner)."""

from enum import StrEnum


class Kind(StrEnum):
    """What collided: the PC's change against the cloud's (stored in ccsync.conflicts.kind)."""

    UPDATE_UPDATE = "update_update"  # the same column changed on both sides to different values
    UPDATE_DELETE = "update_delete"  # the PC changed a row the cloud deleted
    DELETE_UPDATE = "delete_update"  # the PC deleted a row the cloud changed
    INSERT_INSERT = "insert_insert"  # both sides inserted the same key
    REFUSED = "refused"  # the other side's constraints refused a whole source transaction of the PC


class Policy(StrEnum):
    """How a table's conflicts are decided (stored in ccsync.tracked.policy)."""

    MANUAL = "manual"  # a person decides; the cloud's version stays meanwhile
    CLOUD_WINS = "cloud-wins"
    NODE_WINS = "node-wins"
    LATEST_WINS = "latest-wins"  # by hybrid logical clock, ties broken by origin


KINDS = tuple(Kind)
POLICIES = tuple(Policy)
