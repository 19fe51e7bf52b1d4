"""How every long-running civility process logs: one line per event, with its time and level."""

import contextlib
import logging
import os
import sys

from classifier.output import OutputError, write_line

# aiohttp's server logs here each request it could not parse.
SERVER_LOGGER = "aiohttp.server"


def log_events() -> None:
    """Send this process's log records, from INFO up, to standard error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(kept, BadRequestsInOneLine) for kept in server.filters):
        server.addFilter(BadRequestsInOneLine())


def status_line(text: str) -> None:
    """A long-running process's status on stdout: where it serves, the demo credentials, its
    stop. A stdout that does not take it (a reader gone, a full disk) stops nothing: a service
    goes on serving, saying so once on stderr, beside its log."""
    try:
        write_line(text)
    except OutputError as error:
        if sys.stdout is None:  # closed, rather than failed: the lines to come go nowhere too
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        with contextlib.suppress(OSError):  # stderr may have gone the same way
            print(f"civility: {error}; running all the same, with its log on stderr",
                  file=sys.stderr, flush=True)  # fmt: skip


class BadRequestsInOneLine(logging.Filter):
    """aiohttp logs every request it cannot parse (anyone on the internet sends them) as an
    error with a traceback that quotes the bytes at fault, a header's whole line with its token
    included. The client was answered 400: one warning line instead, naming the client and the
    fault, never the bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and error.code == 400:
            # The message's first line names the fault; the lines after it quote the bytes.
            fault = error.message.split("\n", 1)[0].strip().rstrip(":")
            client = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg, record.args = "bad HTTP request from %s: %s", (client, fault)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True
