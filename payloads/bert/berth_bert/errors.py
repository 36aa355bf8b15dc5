"""Exit codes and the error types that map onto them (documented in README.md)."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_WEIGHTS = 4
# EX_TEMPFAIL from sysexits.h: "try again later" — the run stopped on SIGTERM after saving a
# checkpoint, and starting the same command again resumes it.
EXIT_PREEMPTED = 75


class BerthError(Exception):
    exit_code = EXIT_FAILURE


class UsageError(BerthError):
    exit_code = EXIT_USAGE


class DataError(BerthError):
    """A dataset is missing or malformed; the message names the file and, where known, the line."""

    exit_code = EXIT_DATA

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class WeightsError(BerthError):
    exit_code = EXIT_WEIGHTS
