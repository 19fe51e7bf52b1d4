"""``civility score``: JSON Lines comments on stdin, one JSON line of scores per comment on stdout.

Input lines are ``{"id": ..., "text": ...}``; output lines come in input order as
``{"id": ..., "scores": {label: probability}}`` (plus ``"evidence": {label: [[start, end], ...]}``
with ``--evidence``, character offsets into the input text). ``scores`` are the lexical stage's;
a model with a semantic stage adds ``"blended": {label: probability}``, both stages blended
(``--no-semantic`` leaves it out and never loads the encoder). Lines are scored in batches, so any
number of lines streams through in constant memory. A line that cannot be scored gets
``{"id": <id or null>, "line": <n>, "error": {"code": ..., "message": ...}}`` and the others
still score. Blank lines are skipped.
"""

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from classifier.model import Model, ModelError, load_active
from classifier.output import Sink, Stdout, until_the_reader_leaves
from classifier.progress import QUIET, Progress, add_quiet

# The same bound the service puts on a comment's text.
MAX_TEXT_CHARS = 20_000
# Room for the longest text written with \uXXXX escapes, plus the id and the JSON around them; a
# longer line is refused without being held in memory.
MAX_LINE_BYTES = MAX_TEXT_CHARS * 6 + 65_536
DEFAULT_BATCH_SIZE = 256
MAX_BATCH_SIZE = 10_000
MAX_EVIDENCE_SPANS = 5
MODELS_DIR_VARIABLE = "CIVILITY_MODELS_DIR"

CommentId = str | int | None
SubParsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    id: CommentId
    text: str


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    id: CommentId
    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "line": self.line,
            "error": {"code": self.code, "message": self.message},
        }


def register(commands: "SubParsers[argparse.ArgumentParser]") -> None:
    """Add ``civility score`` to the ``civility`` parser."""
    parser = commands.add_parser(
        "score",
        help="score JSON Lines comments from stdin",
        description='Read JSON Lines {"id": ..., "text": ...} on stdin and write '
        '{"id": ..., "scores": {...}} per line on stdout, in input order.',
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="model artifact (.joblib, its card beside it); default: the active model in "
        f"${MODELS_DIR_VARIABLE} or models/",
    )
    parser.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"comments scored together (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--evidence",
        action="store_true",
        help="add the spans of each text that raised each label most",
    )
    parser.add_argument(
        "--no-semantic",
        action="store_true",
        help="lexical scores only, even when the model has a semantic stage",
    )
    add_quiet(parser)
    parser.set_defaults(handler=score_command)


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return size


def score_command(args: argparse.Namespace) -> int:
    if sys.stdin is None:
        # Started with stdin closed (``<&-``): Python leaves it None, not an empty input.
        print(
            "civility score: stdin is closed: give the comments on it as JSON Lines",
            file=sys.stderr,
        )
        return 2
    try:
        model = _load_model(args.model, semantic=not args.no_semantic)
    except ModelError as error:
        print(f"civility score: {error}", file=sys.stderr)
        return 2
    with until_the_reader_leaves():
        score_stream(
            model,
            sys.stdin.buffer,
            Stdout(),
            args.batch_size,
            args.evidence,
            Progress(quiet=args.quiet),
        )
    return 0


def _load_model(artifact: Path | None, semantic: bool = True) -> Model:
    if artifact is not None:
        return Model.load(artifact, semantic=semantic)
    return load_active(Path(os.environ.get(MODELS_DIR_VARIABLE, "models")), semantic=semantic)


def score_stream(
    model: Model,
    source: BinaryIO,
    sink: Sink,
    batch_size: int,
    evidence: bool,
    progress: Progress = QUIET,
) -> None:
    """Score every line of ``source`` onto ``sink``, holding at most one batch in memory."""
    pending: list[Comment | LineError] = []
    for item in progress.over(parse_lines(source), "scoring", unit="line"):
        pending.append(item)
        # Error lines count too: a long run of them must not wait for the end of the input.
        if len(pending) >= batch_size:
            _write_batch(model, pending, sink, evidence)
            pending = []
    _write_batch(model, pending, sink, evidence)


def _write_batch(
    model: Model, pending: list[Comment | LineError], sink: Sink, evidence: bool
) -> None:
    comments = [item for item in pending if isinstance(item, Comment)]
    texts = [comment.text for comment in comments]
    lexical = model.predict_matrix(texts)
    scores = iter(_as_dicts(model.labels, lexical))
    blended = iter(
        _as_dicts(model.labels, model.semantic.blend(texts, lexical))
        if model.semantic is not None and texts
        else []
    )
    for item in pending:
        if isinstance(item, LineError):
            record = item.to_json()
        else:
            record = {"id": item.id, "scores": next(scores)}
            if model.semantic is not None:
                record["blended"] = next(blended)
            if evidence:
                spans = model.explain(item.text, max_spans=MAX_EVIDENCE_SPANS)
                record["evidence"] = {
                    label: [list(span) for span in found] for label, found in spans.items()
                }
        sink.write(json.dumps(record) + "\n")
    sink.flush()


def _as_dicts(labels: tuple[str, ...], matrix: Any) -> list[dict[str, float]]:
    return [dict(zip(labels, map(float, row), strict=True)) for row in matrix]


def parse_lines(source: BinaryIO) -> Iterator[Comment | LineError]:
    """Each non-blank input line as a comment to score, or the error that keeps it from scoring."""
    for number, (raw, complete) in enumerate(_read_lines(source), start=1):
        if not complete:
            message = f"line is longer than {MAX_LINE_BYTES} bytes"
            yield LineError(number, None, "line_too_long", message)
        elif raw.strip():
            yield parse_line(number, raw)


def _read_lines(source: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Lines of at most ``MAX_LINE_BYTES``; a longer one is skipped (flagged incomplete)."""
    while line := source.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, True
            continue
        while (rest := source.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            pass
        yield b"", False


def parse_line(number: int, raw: bytes) -> Comment | LineError:
    try:
        record = json.loads(raw)
    except UnicodeDecodeError:
        return LineError(number, None, "invalid_encoding", "line is not valid UTF-8")
    except ValueError as error:
        return LineError(number, None, "invalid_json", f"line is not valid JSON: {error}")
    except RecursionError:
        return LineError(number, None, "invalid_json", "line nests JSON too deeply")
    if not isinstance(record, dict):
        kind = type(record).__name__
        return LineError(number, None, "not_an_object", f"line is a JSON {kind}, not an object")
    comment_id = record.get("id")
    if isinstance(comment_id, bool) or not isinstance(comment_id, str | int | None):
        return LineError(number, None, "invalid_id", "id must be a string or an integer")
    if "text" not in record:
        return LineError(number, comment_id, "missing_text", 'line has no "text"')
    text = record["text"]
    if not isinstance(text, str):
        return LineError(number, comment_id, "invalid_text", '"text" must be a string')
    if len(text) > MAX_TEXT_CHARS:
        message = f'"text" has {len(text)} characters; at most {MAX_TEXT_CHARS} are scored'
        return LineError(number, comment_id, "text_too_long", message)
    return Comment(number, comment_id, text)
