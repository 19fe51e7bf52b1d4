"""Readers for the labeled sets under the datasets folder, one loader per source.

Each loader returns the source's rows with their native label columns (as floats) and the files it
read. Mapping native columns to our labels is the job of ``classifier.labels``. Loaders apply what
each source's SOURCE.md asks for: exact duplicates dropped, upstream escapes undone, and splits that
keep a thread, post or video on one side.
"""

import csv
import hashlib
import html
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

# Some Wikipedia and Reddit rows are longer than csv's default field limit.
csv.field_size_limit(sys.maxsize)

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Record:
    """One labeled text: native label columns, the group it must stay with, toxic spans if any."""

    text: str
    values: Mapping[str, float]
    group: str = ""
    spans: tuple[int, ...] = ()


@dataclass(frozen=True)
class SourceData:
    """Every split of one source, and the files they were read from."""

    name: str
    files: tuple[Path, ...]
    splits: Mapping[str, list[Record]] = field(default_factory=dict)


class DatasetError(Exception):
    """A dataset folder is missing or does not have the expected shape."""


def text_key(text: str) -> str:
    """The identity used to find duplicates and overlaps: case and spacing do not count."""
    return _WHITESPACE.sub(" ", text).strip().casefold()


_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


def overlap_key(text: str) -> str:
    """The identity used to keep training texts out of what is measured: letters and digits only.

    Copies of one comment differ in markup between sets (backticks for quotes, newlines turned
    into runs of spaces), so a text counts as seen when its letters and digits match. A text with
    none falls back to ``text_key``.
    """
    return _NOT_ALPHANUMERIC.sub("", text.casefold()) or text_key(text)


def dedupe(records: Iterable[Record]) -> list[Record]:
    """Drop empty texts and repeats of a text already seen (the first occurrence wins)."""
    seen: set[str] = set()
    kept: list[Record] = []
    for record in records:
        key = text_key(record.text)
        if key and key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def stable_fraction(key: str) -> float:
    """A fraction in [0, 1) fixed by ``key``, so group splits do not depend on row order."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def _read_csv(path: Path, delimiter: str = ",") -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"expected dataset file {path} is missing")
    with path.open(encoding="utf-8-sig", newline="") as stream:
        yield from csv.DictReader(stream, delimiter=delimiter)


def _flag(value: str) -> float:
    return 1.0 if value.strip().lower() in {"1", "1.0", "true"} else 0.0


def load_youtube_spam(root: Path) -> SourceData:
    """YouTube comments, CLASS 1 = spam; the video is the group (leave-one-video-out)."""
    folder = root / "youtube-spam-collection"
    files = tuple(sorted(folder.glob("Youtube*.csv")))
    if not files:
        raise DatasetError(f"no Youtube*.csv files in {folder}")
    records: list[Record] = []
    for path in files:
        video = path.stem.split("-", 1)[-1]
        for row in _read_csv(path):
            text = html.unescape(row["CONTENT"].replace("<br />", "\n"))
            records.append(Record(text, {"CLASS": float(row["CLASS"])}, group=video))
    return SourceData("youtube-spam-collection", files, {"all": dedupe(records)})


def load_sms_spam(root: Path) -> SourceData:
    """SMS messages, tab-separated ``label<TAB>text`` without header."""
    path = root / "sms-spam-collection" / "SMSSpamCollection"
    if not path.is_file():
        raise DatasetError(f"expected dataset file {path} is missing")
    records: list[Record] = []
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            label, _, text = line.rstrip("\n").partition("\t")
            records.append(Record(text, {"spam": 1.0 if label == "spam" else 0.0}))
    return SourceData("sms-spam-collection", (path,), {"all": dedupe(records)})


_JIGSAW_COLUMNS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


def _jigsaw_rows(paths: Iterable[Path]) -> list[Record]:
    seen_ids: set[str] = set()
    records: list[Record] = []
    for path in paths:
        for row in _read_csv(path):
            if row["id"] in seen_ids:
                continue
            seen_ids.add(row["id"])
            values = {column: float(row[column]) for column in _JIGSAW_COLUMNS}
            records.append(Record(row["comment_text"], values))
    return dedupe(records)


def load_jigsaw_predibase(root: Path) -> SourceData:
    """Jigsaw (Wikipedia talk) pools: the Kaggle-train side and the Kaggle-test side."""
    folder = root / "jigsaw-toxic-predibase-sample"
    train_files = sorted((folder / "data_pools").glob("train.*.csv"))
    train_files.append(folder / "dataset_subsets" / "train.5k.csv")
    test_files = sorted((folder / "data_pools").glob("test.*.csv"))
    if not test_files:
        raise DatasetError(f"no test pools in {folder / 'data_pools'}")
    splits = {"train": _jigsaw_rows(train_files), "test": _jigsaw_rows(test_files)}
    return SourceData("jigsaw-toxic-predibase-sample", (*train_files, *test_files), splits)


def load_toxic_spans(root: Path) -> SourceData:
    """Civil Comments posts rated toxic, with the character offsets raters marked."""
    folder = root / "toxic-spans-civil-comments" / "semeval2021"
    splits: dict[str, list[Record]] = {}
    files: list[Path] = []
    for name in ("train", "trial"):
        path = folder / f"tsd_{name}.csv"
        files.append(path)
        records = []
        for row in _read_csv(path):
            offsets = tuple(int(token) for token in re.findall(r"\d+", row["spans"]))
            records.append(Record(row["text"], {"toxic": 1.0}, spans=offsets))
        splits[name] = dedupe(records)
    return SourceData("toxic-spans-civil-comments", tuple(files), splits)


def load_davidson(root: Path) -> SourceData:
    """Tweets with a majority class: 0 hate speech, 1 offensive language, 2 neither."""
    path = root / "davidson-hate-offensive" / "labeled_data.csv"
    records = []
    for row in _read_csv(path):
        label = int(row["class"])
        values = {"hate": float(label == 0), "offensive": float(label == 1)}
        records.append(Record(html.unescape(row["tweet"]), values))
    return SourceData("davidson-hate-offensive", (path,), {"all": dedupe(records)})


def _tweeteval(root: Path, folder_name: str, column: str) -> SourceData:
    folder = root / folder_name
    files: list[Path] = []
    splits: dict[str, list[Record]] = {}
    for split, parts in (("train", ("train", "val")), ("test", ("test",))):
        records = []
        for part in parts:
            text_path, label_path = folder / f"{part}_text.txt", folder / f"{part}_labels.txt"
            files += [text_path, label_path]
            if not text_path.is_file() or not label_path.is_file():
                raise DatasetError(f"expected {text_path} and {label_path}")
            texts = text_path.read_text(encoding="utf-8").split("\n")
            labels = label_path.read_text(encoding="utf-8").split()
            for text, label in zip(texts, labels, strict=False):
                records.append(Record(text.strip(), {column: float(label)}))
        splits[split] = dedupe(records)
    return SourceData(folder_name, tuple(files), splits)


def load_tweeteval_offensive(root: Path) -> SourceData:
    """OLID tweets, 1 = offensive; TweetEval's train and val are merged for training."""
    return _tweeteval(root, "tweeteval-offensive", "offensive")


def load_tweeteval_hate(root: Path) -> SourceData:
    """Tweets, 1 = hate against immigrants or women."""
    return _tweeteval(root, "tweeteval-hate", "hate")


_KAGGLE_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_MAX_ESCAPE_PASSES = 4


def _unescape_kaggle(raw: str) -> str:
    """Undo the 2012 export: an extra pair of quotes and literal ``\\n``/``\\xNN`` escapes.

    ``\\xNN`` runs are mostly UTF-8 bytes (``\\xc2\\xa0``), occasionally Latin-1 characters.
    Some rows were escaped two or three times, so passes repeat until nothing changes.
    """
    text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    for _ in range(_MAX_ESCAPE_PASSES):
        unescaped = _unescape_once(text)
        if unescaped == text:
            break
        text = unescaped
    return text


def _unescape_once(text: str) -> str:
    pieces: list[bytes] = []
    position = 0
    for match in _KAGGLE_ESCAPE.finditer(text):
        pieces.append(text[position : match.start()].encode("utf-8", "replace"))
        code = match.group(1)
        if code[0] == "x" and len(code) == 3:
            pieces.append(bytes([int(code[1:], 16)]))
        else:
            pieces.append(_escape_as_text(match).encode("utf-8", "replace"))
        position = match.end()
    pieces.append(text[position:].encode("utf-8", "replace"))
    try:
        return b"".join(pieces).decode("utf-8")
    except UnicodeDecodeError:
        return _KAGGLE_ESCAPE.sub(_escape_as_text, text)


def _escape_as_text(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16))
    return _SIMPLE_ESCAPES.get(code, code)


def load_kaggle_insults(root: Path) -> SourceData:
    """News and social commentary comments, Insult 1 = insults a participant."""
    folder = root / "kaggle-insults-social-commentary"
    files = (folder / "train.csv", folder / "test_with_solutions.csv")
    splits = {}
    for split, path in zip(("train", "test"), files, strict=True):
        records = [
            Record(_unescape_kaggle(row["Comment"]), {"Insult": float(row["Insult"])})
            for row in _read_csv(path)
        ]
        splits[split] = dedupe(records)
    return SourceData("kaggle-insults-social-commentary", files, splits)


def load_gab(root: Path) -> SourceData:
    """Gab posts: hd (human dignity), cv (call for violence), vo (vulgarity)."""
    folder = root / "gab-hate-corpus"
    files = (folder / "ghc_train.tsv", folder / "ghc_test.tsv")
    splits = {}
    for split, path in zip(("train", "test"), files, strict=True):
        records = [
            Record(row["text"], {column: float(row[column]) for column in ("hd", "cv", "vo")})
            for row in _read_csv(path, delimiter="\t")
        ]
        splits[split] = dedupe(records)
    return SourceData("gab-hate-corpus", files, splits)


def load_stormfront(root: Path) -> SourceData:
    """Forum sentences labeled hate / noHate; a post with any authors' test sentence is test."""
    path = root / "stormfront-hate-speech" / "stormfront_sentences.csv"
    rows = [row for row in _read_csv(path) if row["label"] in {"hate", "noHate"}]
    test_posts = {row["file_id"].split("_")[0] for row in rows if row["sampled_split"] == "test"}
    splits: dict[str, list[Record]] = {"train": [], "test": []}
    for row in rows:
        post = row["file_id"].split("_")[0]
        record = Record(row["text"], {"hate": float(row["label"] == "hate")}, group=post)
        splits["test" if post in test_posts else "train"].append(record)
    return SourceData(
        "stormfront-hate-speech", (path,), {name: dedupe(rows) for name, rows in splits.items()}
    )


def load_ruddit(root: Path) -> SourceData:
    """Reddit comments with an offensiveness score in [-1, 1]; deleted bodies dropped."""
    path = root / "ruddit-reddit-offensiveness" / "ruddit_with_text.csv"
    records = [
        Record(row["comment_body"], {"offensiveness": float(row["offensiveness_score"])})
        for row in _read_csv(path)
        if row["comment_body"].strip() not in {"[deleted]", "[removed]"}
    ]
    return SourceData("ruddit-reddit-offensiveness", (path,), {"all": dedupe(records)})


_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _read_xlsx_rows(path: Path) -> list[list[str]]:
    """The first sheet of a workbook as rows of strings (stdlib only: no Excel reader needed)."""
    with zipfile.ZipFile(path) as workbook:
        shared = [
            "".join(node.text or "" for node in item.iter(f"{_XLSX}t"))
            for item in ElementTree.fromstring(workbook.read("xl/sharedStrings.xml"))
        ]
        sheet = ElementTree.fromstring(workbook.read("xl/worksheets/sheet1.xml"))
    rows: list[list[str]] = []
    for row in sheet.iter(f"{_XLSX}row"):
        cells: dict[int, str] = {}
        for cell in row.iter(f"{_XLSX}c"):
            column = _column_index(cell.get("r", "A"))
            value = cell.findtext(f"{_XLSX}v") or ""
            cells[column] = shared[int(value)] if cell.get("t") == "s" and value else value
        rows.append([cells.get(index, "") for index in range(max(cells, default=-1) + 1)])
    return rows


def _column_index(reference: str) -> int:
    index = 0
    for letter in reference:
        if not letter.isalpha():
            break
        index = index * 26 + ord(letter.upper()) - ord("A") + 1
    return index - 1


# A third of the videos (by stable hash of the id) is held out for evaluation.
YOUTUBE_TOXIC_EVAL_FRACTION = 0.34


def load_youtube_toxic(root: Path) -> SourceData:
    """YouTube comments under news videos with twelve Is* flags; split by video."""
    path = root / "youtube-toxic-comments" / "youtoxic_english_1000.xlsx.csv"
    if not path.is_file():
        raise DatasetError(f"expected dataset file {path} is missing")
    header, *body = _read_xlsx_rows(path)
    splits: dict[str, list[Record]] = {"train": [], "test": []}
    for cells in body:
        row = dict(zip(header, cells, strict=False))
        values = {name: _flag(value) for name, value in row.items() if name.startswith("Is")}
        video = row["VideoId"]
        record = Record(row["Text"], values, group=video)
        held_out = stable_fraction(video) < YOUTUBE_TOXIC_EVAL_FRACTION
        splits["test" if held_out else "train"].append(record)
    return SourceData(
        "youtube-toxic-comments", (path,), {name: dedupe(rows) for name, rows in splits.items()}
    )


def load_ethos(root: Path) -> SourceData:
    """YouTube and Reddit comments, isHate = share of annotators who found it hateful."""
    path = root / "ethos" / "Ethos_Dataset_Binary.csv"
    records = [
        Record(row["comment"], {"isHate": float(row["isHate"])})
        for row in _read_csv(path, delimiter=";")
    ]
    return SourceData("ethos", (path,), {"all": dedupe(records)})


def load_identity_testset(root: Path) -> SourceData:
    """Wikipedia talk comments that all mention an identity term (the non-fuzzed, real texts)."""
    path = root / "wikipedia-toxicity-identity-testset" / "toxicity_nonfuzzed_testset.csv"
    records = [Record(row["comment"], {"toxic": _flag(row["toxic"])}) for row in _read_csv(path)]
    return SourceData("wikipedia-toxicity-identity-testset", (path,), {"all": dedupe(records)})


def load_c3(root: Path) -> SourceData:
    """Globe and Mail comments with a crowd toxicity level from 1 (none) to 4 (very)."""
    path = root / "c3-constructive-comments-corpus" / "C3_anonymized.dedup.csv"
    records = [
        Record(
            row["comment_text"],
            {"crowd_toxicity_level": float(row["crowd_toxicity_level"])},
            group=row["article_id"],
        )
        for row in _read_csv(path)
    ]
    return SourceData("c3-constructive-comments-corpus", (path,), {"all": dedupe(records)})


CIVIL_COMMENTS_SPLITS = ("train", "test")


def load_civil_comments_sample(root: Path) -> SourceData:
    """News-site comments (Civil Comments), label 1 = at least half the raters found it toxic.

    The file's ``split`` column (from the sha256 of each text) decides train and test; a row
    without one falls on a side by ``stable_fraction`` of its text, so the split never depends
    on row order.
    """
    path = root / "civil-comments-sample" / "civil_comments_10k.csv"
    splits: dict[str, list[Record]] = {split: [] for split in CIVIL_COMMENTS_SPLITS}
    for row in _read_csv(path):
        split = row.get("split") or ("test" if stable_fraction(row["text"]) < 0.5 else "train")
        if split not in splits:
            raise DatasetError(f"{path}: unknown split {split!r}; expected train or test")
        splits[split].append(Record(row["text"], {"label": float(row["label"])}))
    return SourceData(
        "civil-comments-sample", (path,), {name: dedupe(rows) for name, rows in splits.items()}
    )


def load_toxigen_implicit(root: Path) -> SourceData:
    """Implicitly hateful (1) and neutral (0) statements; the identity group is the row's group."""
    path = root / "toxigen-implicit" / "toxigen_statements.jsonl"
    if not path.is_file():
        raise DatasetError(f"expected dataset file {path} is missing")
    records = []
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                row = json.loads(line)
                records.append(
                    Record(row["text"], {"label": float(row["label"])}, group=row["group"])
                )
    return SourceData("toxigen-implicit", (path,), {"all": dedupe(records)})


MADLIBS_FOLDER = "identity-madlibs"


def read_identity_terms(root: Path) -> tuple[str, ...]:
    """The identity terms the bias templates were filled with, in the file's order."""
    path = root / MADLIBS_FOLDER / "identity_terms.txt"
    if not path.is_file():
        raise DatasetError(f"expected dataset file {path} is missing")
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(dict.fromkeys(line.strip().lower() for line in lines if line.strip()))


def load_identity_madlibs(root: Path) -> SourceData:
    """Template sentences around identity terms, ``BAD`` = toxic; the template is the group."""
    folder = root / MADLIBS_FOLDER
    path = folder / "bias_madlibs_77k.csv"
    records = [
        Record(row["Text"], {"bad": float(row["Label"] == "BAD")}, group=row["Template"])
        for row in _read_csv(path)
    ]
    read_identity_terms(root)
    return SourceData(
        MADLIBS_FOLDER, (path, folder / "identity_terms.txt"), {"all": dedupe(records)}
    )


LOADERS: Mapping[str, Callable[[Path], SourceData]] = {
    "youtube-spam-collection": load_youtube_spam,
    "sms-spam-collection": load_sms_spam,
    "jigsaw-toxic-predibase-sample": load_jigsaw_predibase,
    "toxic-spans-civil-comments": load_toxic_spans,
    "davidson-hate-offensive": load_davidson,
    "tweeteval-offensive": load_tweeteval_offensive,
    "tweeteval-hate": load_tweeteval_hate,
    "kaggle-insults-social-commentary": load_kaggle_insults,
    "gab-hate-corpus": load_gab,
    "stormfront-hate-speech": load_stormfront,
    "ruddit-reddit-offensiveness": load_ruddit,
    "youtube-toxic-comments": load_youtube_toxic,
    "ethos": load_ethos,
    "wikipedia-toxicity-identity-testset": load_identity_testset,
    "c3-constructive-comments-corpus": load_c3,
    "civil-comments-sample": load_civil_comments_sample,
    "toxigen-implicit": load_toxigen_implicit,
    MADLIBS_FOLDER: load_identity_madlibs,
}


def load_source(datasets_dir: Path, name: str) -> SourceData:
    """Read one source by its folder name."""
    if name not in LOADERS:
        raise DatasetError(f"no loader for dataset {name!r}; known: {', '.join(LOADERS)}")
    if not (datasets_dir / name).is_dir():
        raise DatasetError(f"dataset folder {datasets_dir / name} is missing")
    return LOADERS[name](datasets_dir)
