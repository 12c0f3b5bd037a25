"""The one exception type for user mistakes: the CLI prints it as a single line."""


class TmtError(Exception):
    """A problem the user can fix (bad input file, bad argument, mismatched checkpoint).

    The CLI prints ``str(error)`` on stderr and exits non-zero, never a traceback.
    """
