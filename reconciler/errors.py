"""The one exception type that ccsync raises for what a user can fix."""


class CcsyncError(Exception):
    """A problem the user can act on; its message is one line that says what to do."""


class NotInstalled(CcsyncError):
    """ccsync is not installed in a database that needs it."""
