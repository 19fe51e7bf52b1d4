"""``civility score`` driven as a user runs it: a subprocess fed JSON Lines on stdin."""

import io
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from classifier.model import Model
from classifier.score_cli import (
    MAX_LINE_BYTES,
    MAX_TEXT_CHARS,
    Comment,
    LineError,
    parse_line,
    score_stream,
)

CIVILITY = Path(sys.executable).with_name("civility")
INSULT = "You are a 1d10t and a m0ron, shut up"
CIVIL = "Thank you for the balanced report on the talks between the two governments."
READ_TIMEOUT_SECONDS = 60


def run_score(
    lines: list[str] | bytes, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    stdin = lines if isinstance(lines, bytes) else "".join(line + "\n" for line in lines).encode()
    completed = subprocess.run(
        [str(CIVILITY), "score", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=110,
        check=False,
    )
    return subprocess.CompletedProcess(
        completed.args, completed.returncode, completed.stdout.decode(), completed.stderr.decode()
    )


def output_records(completed: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


def comment(comment_id: str | int, text: str) -> str:
    return json.dumps({"id": comment_id, "text": text})


def test_scores_every_line_in_input_order(tiny_model_path: Path, tiny_model: Model) -> None:
    texts = [CIVIL, INSULT, "", "ok", "Great article!"]
    lines = [comment(f"c{index}", text) for index, text in enumerate(texts)]
    records = output_records(run_score(lines, "--model", str(tiny_model_path)))
    assert [record["id"] for record in records] == [f"c{index}" for index in range(len(texts))]
    expected = tiny_model.score(texts)
    for record, scores in zip(records, expected, strict=True):
        assert set(record) == {"id", "scores"}
        assert record["scores"] == pytest.approx(scores)
    assert records[1]["scores"]["toxicity"] > records[0]["scores"]["toxicity"]


def test_default_model_is_the_active_one(tiny_model_path: Path) -> None:
    env = {"CIVILITY_MODELS_DIR": str(tiny_model_path.parent)}
    by_default = output_records(run_score([comment(1, INSULT)], env=env))
    explicit = output_records(run_score([comment(1, INSULT)], "--model", str(tiny_model_path)))
    assert by_default == explicit


def test_bad_lines_get_errors_and_the_rest_still_score(tiny_model_path: Path) -> None:
    too_long = "x" * (MAX_TEXT_CHARS + 1)
    stdin = b"\n".join(
        [
            comment("a", CIVIL).encode(),
            b"{not json",
            json.dumps({"id": "b", "text": 42}).encode(),
            b"",
            json.dumps({"id": "c"}).encode(),
            b'["a list"]',
            json.dumps({"id": ["no"], "text": "x"}).encode(),
            comment("d", too_long).encode(),
            b'{"id": "e", "text": "caf\xe9"}',
            b"x" * (MAX_LINE_BYTES + 10),
            b"[" * 5_000,
            b'{"id": "f", "text": "half a pair \\ud800 on its own"}',
            comment(7, INSULT).encode(),
        ]
    )
    records = output_records(run_score(stdin + b"\n", "--model", str(tiny_model_path)))
    assert [record.get("id") for record in records] == [
        "a", None, "b", "c", None, None, "d", None, None, None, "f", 7,
    ]  # fmt: skip
    errors = [(record["line"], record["error"]["code"]) for record in records if "error" in record]
    assert errors == [
        (2, "invalid_json"),
        (3, "invalid_text"),
        (5, "missing_text"),
        (6, "not_an_object"),
        (7, "invalid_id"),
        (8, "text_too_long"),
        (9, "invalid_encoding"),
        (10, "line_too_long"),
        (11, "invalid_json"),
    ]
    assert all(record["error"]["message"] for record in records if "error" in record)
    assert "scores" in records[0]
    assert "scores" in records[-2]  # the lone surrogate scores like any other symbol
    assert "scores" in records[-1]


def test_error_lines_stream_out_without_waiting_for_the_end(tiny_model: Model) -> None:
    batch_size = 3
    sink = io.StringIO()

    class Source:
        """Bad lines forever; what the sink held when the reader came back for more."""

        def __init__(self) -> None:
            self.lines_read = 0
            self.written_by_line: list[int] = []

        def readline(self, limit: int = -1) -> bytes:
            self.written_by_line.append(len(sink.getvalue().splitlines()))
            self.lines_read += 1
            return b"[]\n" if self.lines_read <= 2 * batch_size else b""

    source = Source()
    score_stream(tiny_model, cast(BinaryIO, source), sink, batch_size, evidence=False)
    assert source.written_by_line[batch_size + 1] == batch_size
    assert len(sink.getvalue().splitlines()) == 2 * batch_size


def test_output_is_the_same_for_any_batch_size(tiny_model_path: Path) -> None:
    lines = [comment(index, f"{INSULT if index % 3 else CIVIL} #{index}") for index in range(40)]
    lines.insert(17, "broken")
    outputs = {
        size: output_records(
            run_score(lines, "--model", str(tiny_model_path), "--batch-size", size)
        )
        for size in ("1", "7", "256")
    }
    assert len(outputs["1"]) == 41
    assert outputs["1"] == outputs["7"] == outputs["256"]


def test_streams_a_batch_before_the_input_ends(tiny_model_path: Path) -> None:
    command = [str(CIVILITY), "score", "--model", str(tiny_model_path), "--batch-size", "2"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(f"{comment(1, CIVIL)}\n{comment(2, INSULT)}\n".encode())
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], READ_TIMEOUT_SECONDS)
        assert ready, "no output while the input was still open"
        first = json.loads(process.stdout.readline())
        process.stdin.close()
        rest = process.stdout.read().decode().splitlines()
        assert process.wait(timeout=READ_TIMEOUT_SECONDS) == 0
    assert first["id"] == 1
    assert [json.loads(line)["id"] for line in rest] == [2]


def test_evidence_gives_spans_of_the_original_text(tiny_model_path: Path) -> None:
    text = "Ｗｅｌｌ...  " + INSULT
    records = output_records(
        run_score([comment("x", text)], "--model", str(tiny_model_path), "--evidence")
    )
    evidence = records[0]["evidence"]
    assert set(evidence) == set(records[0]["scores"])
    for spans in evidence.values():
        assert all(0 <= start < end <= len(text) for start, end in spans)
    highlighted = {text[start:end] for start, end in evidence["toxicity"]}
    assert highlighted & {"1d10t", "m0ron"}, highlighted


def test_missing_model_fails_with_a_clear_message(tmp_path: Path) -> None:
    completed = run_score([comment(1, CIVIL)], env={"CIVILITY_MODELS_DIR": str(tmp_path)})
    assert completed.returncode == 2
    assert "no active model" in completed.stderr
    assert completed.stdout == ""


def test_rejects_a_batch_size_out_of_range(tiny_model_path: Path) -> None:
    completed = run_score([], "--model", str(tiny_model_path), "--batch-size", "0")
    assert completed.returncode == 2
    assert "--batch-size" in completed.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"id": "a", "text": "hi"}', Comment(1, "a", "hi")),
        (b'{"id": 5, "text": ""}', Comment(1, 5, "")),
        (b'{"text": "no id"}', Comment(1, None, "no id")),
        (b'{"id": true, "text": "x"}', LineError(1, None, "invalid_id", "")),
        (b'{"id": 1.5, "text": "x"}', LineError(1, None, "invalid_id", "")),
        (b'{"id": "a", "text": null}', LineError(1, "a", "invalid_text", "")),
        (b"42", LineError(1, None, "not_an_object", "")),
        (b'{"id": "a", "text": "\\ud800"}', Comment(1, "a", "\ud800")),
    ],
)
def test_parse_line(raw: bytes, expected: Comment | LineError) -> None:
    parsed = parse_line(1, raw)
    if isinstance(expected, LineError):
        assert isinstance(parsed, LineError)
        assert (parsed.id, parsed.code) == (expected.id, expected.code)
        assert parsed.message
    else:
        assert parsed == expected


def test_a_model_with_a_semantic_stage_prints_lexical_and_blended_scores(
    tiny_semantic_model_path: Path, tiny_semantic_model: Model
) -> None:
    texts = [CIVIL, INSULT, "Go back where you came from."]
    lines = [comment(index, text) for index, text in enumerate(texts)]
    records = output_records(run_score(lines, "--model", str(tiny_semantic_model_path)))
    assert [record["scores"] for record in records] == tiny_semantic_model.score(texts)
    assert [record["blended"] for record in records] == tiny_semantic_model.score_blended(texts)
    lexical_only = output_records(
        run_score(lines, "--model", str(tiny_semantic_model_path), "--no-semantic")
    )
    assert lexical_only == [{"id": record["id"], "scores": record["scores"]} for record in records]


def test_a_model_without_a_stage_prints_no_blended_scores(tiny_model_path: Path) -> None:
    records = output_records(run_score([comment(1, CIVIL)], "--model", str(tiny_model_path)))
    assert set(records[0]) == {"id", "scores"}


def test_ctrl_c_ends_the_command_in_one_line_with_status_130(tiny_model_path: Path) -> None:
    command = [str(CIVILITY), "score", "--model", str(tiny_model_path), "--batch-size", "1"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(f"{comment(1, CIVIL)}\n".encode())
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], READ_TIMEOUT_SECONDS)
        assert ready, "no output while the input was still open"
        assert json.loads(process.stdout.readline())["id"] == 1
        # Scoring, waiting for the next line, as at a terminal: the user presses Ctrl-C.
        process.send_signal(signal.SIGINT)
        # stdin stays open: the command must end by the Ctrl-C, not by reaching the end of it.
        process.wait(timeout=READ_TIMEOUT_SECONDS)
        assert process.stderr is not None
        err = process.stderr.read()
    assert (process.returncode, err.decode()) == (130, "civility score: interrupted\n")


def test_a_closed_stdin_is_said_in_one_line_with_status_2(tiny_model_path: Path) -> None:
    # `civility score <&-`: there is no input to read, not even an empty one.
    completed = subprocess.run(
        ["bash", "-c", 'exec "$0" score --model "$1" <&-', str(CIVILITY), str(tiny_model_path)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert (completed.returncode, completed.stdout, completed.stderr) == (
        2, "", "civility score: stdin is closed: give the comments on it as JSON Lines\n",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("redirect", "reason"),
    [(">/dev/full", "No space left on device"), (">&-", "it is closed")],
)
def test_scores_stdout_does_not_take_are_said_in_one_line(
    tiny_model_path: Path, redirect: str, reason: str
) -> None:
    completed = subprocess.run(
        ["bash", "-c", f'exec "$0" score --model "$1" {redirect}', CIVILITY, tiny_model_path],
        input=f"{comment(1, CIVIL)}\n",
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert (completed.returncode, completed.stderr) == (
        1, f"civility score: cannot write to stdout ({reason})\n",
    )  # fmt: skip
