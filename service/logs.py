"""How every long-running civility process logs: one line per event, with its time and level."""

import logging

# aiohttp's server logs here each request it could not parse.
SERVER_LOGGER = "aiohttp.server"


def log_events() -> None:
    """Send this process's log records, from INFO up, to standard error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(kept, BadRequestsInOneLine) for kept in server.filters):
        server.addFilter(BadRequestsInOneLine())


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
