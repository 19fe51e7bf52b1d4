"""How every long-running civility process logs: one line per event, with its time and level."""

import logging


def log_events() -> None:
    """Send this process's log records, from INFO up, to standard error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
