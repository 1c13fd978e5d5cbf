"""The one exception type for bad input at wala's boundaries (files, configs, CLI arguments).

The CLI prints its message as a single line and exits non-zero; library users can catch it.
"""


class WalaError(Exception):
    """Bad input: a missing or corrupt file, an empty or degenerate mesh, a wrong shape or config."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a WalaError message: its type and the first line of its text."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"
