"""The one exception type for bad input at wala's boundaries (files, configs, CLI arguments).

The CLI prints its message as a single line and exits non-zero; library users can catch it.
"""


class WalaError(Exception):
    """Bad input: a missing or corrupt file, an empty or degenerate mesh, a wrong shape or config."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a WalaError message: its type and the first line of its text."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def require(what: str, extra: str, *modules: str) -> None:
    """A WalaError naming the optional packages `what` needs that are not installed (by their import names;
    shown as pip names, '_' → '-') and the extra that brings them: `pip install 'wala[EXTRA]'`."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(m.replace("_", "-") for m in missing)
        raise WalaError(f"{what} need {names}: pip install 'wala[{extra}]'")
