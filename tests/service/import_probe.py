"""An initializer whose module writes down each process that imports it (a worker test's)."""

import os

_LOG = os.environ.get("CIVILITY_TEST_IMPORT_LOG")
if _LOG:
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()}\n")


def start() -> int:
    return os.getpid()
