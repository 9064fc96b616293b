"""Reading and checking the user's training files: sentences, pairs or triplets.

Formats: ``.txt`` (one sentence per line), ``.csv`` / ``.tsv`` (optional header row, quoting as in Excel's
export), ``.jsonl`` (one JSON object per line: ``{"text": ...}`` or ``{"anchor": ..., "positive": ...}``).
Every problem raises :class:`DataError` with a message for a non-programmer: the file, the line, what is
wrong and what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from simcse_core.limits import LIMITS

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")
# Header names, normalised (lower case, "_" for spaces and dashes). A first row of only these is a header.
KNOWN_COLUMNS = frozenset({
    "text", "sentence", "sentence1", "sentence2", "anchor", "positive", "negative", "hard_negative",
    "score", "label", "topic",
    "sent0", "sent1", "hard_neg",  # the official SimCSE files' names (nli_for_simcse.csv)
})
# A first row of lower-case names like these, none of them known, is a header this reader cannot map: refused.
_HEADER_LIKE = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Each column a loader needs: (description for messages, header / JSON names it may have, first = preferred).
_TEXT = ("sentence", ("text", "sentence", "sentence1", "anchor"))
_ANCHOR = ("first sentence", ("anchor", "sentence1", "text", "sentence", "sent0"))
_POSITIVE = ("second sentence", ("positive", "sentence2", "sent1"))
_NEGATIVE = ("hard negative", ("hard_negative", "negative", "hard_neg"))
_SCORE = ("score", ("score", "label"))

Kind = Literal["sentences", "pairs", "triplets"]
_KIND_COLUMNS = {
    "sentences": (_TEXT,), "pairs": (_ANCHOR, _POSITIVE), "triplets": (_ANCHOR, _POSITIVE, _NEGATIVE)}
_KIND_HELP = {
    "sentences": "a sentences file has 1 column (one sentence per line)",
    "pairs": "a pairs file has 2 columns (anchor, positive)",
    "triplets": "a triplets file has 3 columns (anchor, positive, hard negative)",
}


class DataError(ValueError):
    """A user file or text cannot be used; the message says why and what to do, in plain words."""


@dataclass(frozen=True)
class DataLimits:
    """Caps on one file a reader accepts; the defaults are a visitor's (simcse_core.limits.LIMITS)."""

    max_rows: int = LIMITS.file_rows  # sentences, pairs or triplets in one file (blank lines not counted)
    max_chars: int = LIMITS.sentence_chars  # characters in one sentence
    max_bytes: int = LIMITS.file_bytes  # size of one file


DEFAULT_LIMITS = DataLimits()


@dataclass(frozen=True)
class TrainingData:
    """Examples read from a training file, and what kind they are."""

    mode: Literal["unsup", "sup"]  # unsupervised (sentences) or supervised (pairs / triplets)
    kind: Kind
    examples: list  # list[str] for sentences, else list of 2- or 3-tuples of str
    source: str = ""  # the file name
    note: str = ""  # what was done to the file's rows on the way, in plain words ("" if nothing)

    def summary(self) -> str:
        """E.g. ``"812 sentences (unsupervised)"``."""
        label = self.kind[:-1] if len(self.examples) == 1 else self.kind
        how = "unsupervised" if self.mode == "unsup" else "supervised"
        if self.kind == "triplets":
            how += ", with hard negatives"
        return f"{len(self.examples):,} {label} ({how})"


# A scored-pairs file (sentence1, sentence2, score) trains supervised SimCSE on its high-scoring pairs only: a
# pair is a positive when its score is at least this share of the file's scale (4 of 5 on STS's 0-5 scale:
# the paper's alignment positives are STS pairs scored above 4). Low-scoring pairs are not matches.
SCORED_POSITIVE_SHARE = 0.8


@dataclass(frozen=True)
class _Table:
    name: str  # file name, for messages
    header: tuple[str, ...] | None  # normalised column names (CSV/TSV header, or first JSON object's keys)
    rows: tuple[tuple[int, tuple[str, ...] | dict], ...]  # (line number, cells or JSON object), no blanks
    is_json: bool


def load_sentences(path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS) -> list[str]:
    """Distinct, stripped sentences from a file (a CSV/TSV/JSONL header may name the ``text`` column)."""
    return _unique(row[0] for row in _columns(_read(path, limits), "sentences", limits))


def load_pairs(path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    """(anchor, positive) pairs; exact duplicate rows are dropped."""
    return _unique(_columns(_read(path, limits), "pairs", limits))


def load_triplets(
    path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS
) -> list[tuple[str, str, str]]:
    """(anchor, positive, hard negative) triplets; exact duplicate rows are dropped."""
    return _unique(_columns(_read(path, limits), "triplets", limits))


def load_training_data(path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS) -> TrainingData:
    """Read a training file and decide its kind from its columns: 1 -> sentences, 2 -> pairs, 3 -> triplets.

    A header (CSV/TSV) or the keys of the first JSON object decide by name instead: a ``hard_negative`` or
    ``negative`` column makes triplets, a ``positive`` or ``sentence2`` column pairs, else sentences.
    """
    table = _read(path, limits)
    if _is_scored(table):
        return _scored_training_data(table, limits)
    kind = _detect_kind(table)
    rows = _columns(table, kind, limits)
    examples = _unique(row[0] for row in rows) if kind == "sentences" else _unique(rows)
    if len(examples) < 2:
        raise DataError(
            f"{table.name} has only {len(examples)} distinct {kind[:-1]}; training needs at least 2 (each "
            "example is contrasted with the others in its batch). Add more lines.")
    mode = "unsup" if kind == "sentences" else "sup"
    data = TrainingData(mode=mode, kind=kind, examples=examples, source=table.name)
    logger.info("Read %s from %s", data.summary(), table.name)
    return data


def _is_scored(table: _Table) -> bool:
    """A scored-pairs file: a score/label column with numbers, or 3 unnamed columns whose third is numeric."""
    if table.header is not None:
        return bool(set(table.header) & set(_SCORE[1])) and not set(table.header) & set(_NEGATIVE[1])
    if table.is_json or len(table.rows[0][1]) != 3:
        return False
    return all(_number(cells[2]) is not None for _, cells in table.rows)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _scored_training_data(table: _Table, limits: DataLimits) -> TrainingData:
    rows = _scored(table, limits)
    scores = [score for _, _, score in rows]
    top = 5.0 if max(scores) > 1.0 else 1.0  # STS's 0-5 scale, or 0-1
    threshold = SCORED_POSITIVE_SHARE * top
    examples = _unique((a, b) for a, b, score in rows if score >= threshold)
    note = (f"{table.name} is a scored-pairs file (sentence1, sentence2, score). Only pairs scored "
            f"{threshold:g} or more (of {top:g}) mean the same thing, so {len(examples):,} of its {len(rows):,} "
            f"pairs were kept as positives; the others are not matches and were left out.")
    if len(examples) < 2:
        raise DataError(f"{note} Training needs at least 2 such pairs. Add pairs with high scores, or upload "
                        "sentences (one per line) for unsupervised training.")
    data = TrainingData(mode="sup", kind="pairs", examples=examples, source=table.name, note=note)
    logger.info("Read %s from %s (%d of %d scored pairs kept)", data.summary(), table.name, len(examples),
                len(rows))
    return data


def load_scored_rows(
    path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS
) -> list[tuple[str, str, float]]:
    """(sentence1, sentence2, score) rows of a scored-pairs file (CSV/TSV/JSONL), in file order."""
    return _scored(_read(path, limits), limits)


def _scored(table: _Table, limits: DataLimits) -> list[tuple[str, str, float]]:
    columns = (_ANCHOR, _POSITIVE, _SCORE)
    if table.header is None and not table.is_json:
        _check_width(table, 3, "a scored-pairs file has 3 columns (sentence1, sentence2, score)")
    out = []
    for line, (first, second, raw) in _select(table, columns, limits):
        try:
            score = float(raw)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise DataError(f"{table.name}, line {line}: the score {raw!r} is not a number. Write a number "
                            "such as 3.5 in the score column.")
        out.append((first, second, score))
    return out


def sentences_from_text(text: str, limits: DataLimits = DEFAULT_LIMITS) -> list[str]:
    """Distinct, stripped sentences from pasted text, one per line."""
    rows = [(i, line.strip()) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not rows:
        raise DataError("The pasted text is empty. Paste some sentences, one per line.")
    _check_row_count("The pasted text", len(rows), limits)
    for line, sentence in rows:
        _check_length("The pasted text", line, sentence, limits)
    return _unique(sentence for _, sentence in rows)


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def _read(path: str | os.PathLike[str], limits: DataLimits) -> _Table:
    path = Path(path)
    name, suffix = path.name, path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        what = f"of type '{suffix}'" if suffix else "without an extension"
        raise DataError(f"{name}: files {what} are not supported. Save it as .txt (one sentence per line), "
                        ".csv, .tsv or .jsonl and upload it again.")
    if not path.is_file():
        raise DataError(f"{name}: the file was not found. Upload it again.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DataError(f"{name} is {size / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:g} MB. "
                        "Split it into smaller files or remove some lines.")
    text = _decode(path.read_bytes(), name)
    if suffix == ".txt":
        rows = [(i, (line.strip(),)) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
        table = _Table(name, None, tuple(rows), is_json=False)
    elif suffix == ".jsonl":
        table = _read_jsonl(text, name)
    else:
        table = _read_delimited(text, name, "\t" if suffix == ".tsv" else ",")
    if not table.rows:
        raise DataError(f"{name} has a header row but no data below it. Add your sentences under the header.")
    _check_row_count(name, len(table.rows), limits)
    return table


def _decode(raw: bytes, name: str) -> str:
    if not raw:
        raise DataError(f"{name} is empty. Choose a file that contains sentences, one per line.")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{name} is saved as UTF-16 text. Save it again with the encoding 'UTF-8' (in Excel: "
                        "'CSV UTF-8'; in Notepad: Save as > Encoding: UTF-8) and upload it again.")
    if b"\x00" in raw:
        raise DataError(f"{name} is not a text file (it contains binary data; it may be an Excel or Word "
                        "file with a changed name). Export it as CSV (UTF-8) or plain text and upload that.")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{name}, line {line}: this line is not UTF-8 text (byte {raw[err.start]:#04x} cannot be read; "
            "the file was probably saved in another encoding such as Windows-1252). Save the file with the "
            "encoding 'UTF-8' (in Excel: 'CSV UTF-8') and upload it again.") from None
    if not text.strip():
        raise DataError(f"{name} contains only blank lines. Add sentences, one per line.")
    return text


def _normalise(cell: str) -> str:
    return cell.strip().lower().replace(" ", "_").replace("-", "_")


def _read_delimited(text: str, name: str, delimiter: str) -> _Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, previous = [], 0
    try:
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            if any("\n" in cell or "\r" in cell for cell in cells):
                raise DataError(
                    f"{name}, line {start}: a double quote (\") opens a sentence here that runs over several "
                    "lines (it is never closed). Remove the stray quote, or put the whole sentence in quotes "
                    'and write each quote inside it twice ("").')
            if any(cell.strip() for cell in cells):
                rows.append((start, tuple(cells)))
    except csv.Error as err:
        raise DataError(f"{name}, line {reader.line_num + 1}: this line cannot be read as "
                        f"{delimiter!r}-separated values ({err}). Check its quotes and separators.") from None
    if not rows:  # only separators and blanks, e.g. ",,"
        raise DataError(f"{name} has no text, only separators. Choose a file that contains sentences.")
    header = None
    if all(_normalise(cell) in KNOWN_COLUMNS for cell in rows[0][1]):
        header = tuple(_normalise(cell) for cell in rows[0][1])
    width_line, width = rows[0][0], len(rows[0][1])
    for line, cells in rows:
        if len(cells) != width:
            raise DataError(
                f"{name}, line {line}: this line has {_columns_word(len(cells))} but line {width_line} has "
                f"{width}. "
                "Every line needs the same number of columns; if a sentence contains the separator, put the "
                "sentence in double quotes.")
    if header is None and len(rows) > 1 and all(_HEADER_LIKE.fullmatch(cell.strip()) for cell in rows[0][1]) and any(
            " " in cell.strip() for _, cells in rows[1:] for cell in cells):
        found = ", ".join(cell.strip() for cell in rows[0][1])
        raise DataError(f"{name}: the first row ({found}) looks like a header, but this reader does not know "
                        "those names. Name the columns text (sentences); anchor, positive, hard_negative (pairs "
                        "or triplets); or sentence1, sentence2, score (scored pairs) — or remove the row.")
    return _Table(name, header, tuple(rows[1:] if header else rows), is_json=False)


def _read_jsonl(text: str, name: str) -> _Table:
    rows = []
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as err:
            raise DataError(f"{name}, line {line}: this line is not valid JSON ({err.msg}). Each line "
                            'must be one JSON object, such as {"text": "A man plays a guitar."}') from None
        if not isinstance(record, dict):
            raise DataError(f"{name}, line {line}: this line is not a JSON object. Write each line as "
                            '{"text": "..."} or {"anchor": "...", "positive": "..."}.')
        rows.append((line, record))
    header = tuple(_normalise(key) for key in rows[0][1]) if rows else None
    return _Table(name, header, tuple(rows), is_json=True)


def _check_row_count(name: str, count: int, limits: DataLimits) -> None:
    if count > limits.max_rows:
        raise DataError(f"{name} has {count:,} lines; the limit is {limits.max_rows:,}. Keep the first "
                        f"{limits.max_rows:,} lines or split the file.")


def _check_length(name: str, line: int, value: str, limits: DataLimits) -> None:
    if len(value) > limits.max_chars:
        raise DataError(f"{name}, line {line}: a sentence of {len(value):,} characters is longer than the "
                        f"limit of {limits.max_chars:,}. Shorten it or split it into several lines.")


def _columns_word(n: int) -> str:
    return f"{n} column" if n == 1 else f"{n} columns"


def _check_width(table: _Table, expected: int, what: str) -> None:
    width = len(table.rows[0][1])
    if width != expected:
        raise DataError(f"{table.name} has {_columns_word(width)}, but {what}. Fix the columns, or add a "
                        "header row that names them (text; or anchor,positive,hard_negative).")


def _detect_kind(table: _Table) -> Kind:
    if table.header is not None:
        names = set(table.header)
        if names & set(_NEGATIVE[1]):
            return "triplets"
        if names & set(_POSITIVE[1]):
            return "pairs"
        if names & set(_TEXT[1]):
            return "sentences"
        where = "The first JSON object" if table.is_json else "The header row"
        raise DataError(f"{table.name}: {where} names no sentence column (found: {', '.join(table.header)}). "
                        "Use 'text' for sentences, or 'anchor', 'positive' and optionally 'hard_negative'.")
    width = len(table.rows[0][1])
    kinds: tuple[Kind, ...] = ("sentences", "pairs", "triplets")
    if not 1 <= width <= 3:
        raise DataError(f"{table.name} has {_columns_word(width)}; a training file has 1 (sentences), 2 "
                        "(pairs: anchor, positive) or 3 (triplets: anchor, positive, hard negative). Remove "
                        "the extra columns.")
    return kinds[width - 1]


def _columns(table: _Table, kind: Kind, limits: DataLimits) -> list[tuple[str, ...]]:
    columns = _KIND_COLUMNS[kind]
    if table.header is None:
        _check_width(table, len(columns), _KIND_HELP[kind])
    rows = [row for _, row in _select(table, columns, limits)]
    if not rows:
        raise DataError(f"{table.name} has no sentences in its '{columns[0][1][0]}' column. Fill it in.")
    return rows


def _select(
    table: _Table, columns: Sequence[tuple[str, tuple[str, ...]]], limits: DataLimits
) -> list[tuple[int, tuple[str, ...]]]:
    """The wanted columns of each row, stripped and checked (a row with one blank wanted cell is dropped)."""
    positions = None if table.is_json else _positions(table, columns)
    out = []
    for line, row in table.rows:
        if table.is_json:
            values = tuple(_json_value(table.name, line, row, column) for column in columns)
        else:
            values = tuple(row[i].strip() for i in positions)
        if len(values) == 1 and not values[0]:
            continue
        for (what, _), value in zip(columns, values):
            if not value:
                raise DataError(f"{table.name}, line {line}: the {what} is empty. Fill it in or delete the "
                                "line.")
            _check_length(table.name, line, value, limits)
        out.append((line, values))
    return out


def _positions(table: _Table, columns: Sequence[tuple[str, tuple[str, ...]]]) -> list[int]:
    if table.header is None:
        return list(range(len(columns)))
    positions = []
    for what, names in columns:
        found = [table.header.index(n) for n in names if n in table.header]
        if not found:
            raise DataError(f"{table.name}: the header row has no column for the {what} (its columns are: "
                            f"{', '.join(table.header)}). Name that column '{names[0]}'.")
        positions.append(found[0])
    return positions


def _json_value(name: str, line: int, record: dict, column: tuple[str, tuple[str, ...]]) -> str:
    what, names = column
    keys = {_normalise(key): key for key in record}
    key = next((keys[n] for n in names if n in keys), None)
    if key is None:
        raise DataError(f'{name}, line {line}: the key "{names[0]}" (the {what}) is missing. Add it to '
                        f'this line, for example {{"{names[0]}": "..."}}.')
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(f'{name}, line {line}: "{key}" must be text in double quotes, not '
                        f"{json.dumps(value)}.")
    return str(value).strip()


def load_labelled_sentences(
    path: str | os.PathLike[str], limits: DataLimits = DEFAULT_LIMITS,
) -> tuple[list[str], list[str] | None]:
    """Sentences and, if the file has a ``topic`` column, one topic per sentence (``"(none)"`` where blank).

    The sentences are read and validated by :func:`load_sentences` (DataError on a bad file); the topics come
    from the same CSV/TSV header when it names a ``topic`` and a ``text`` (or ``sentence``) column, else None.
    """
    path = Path(path)
    sentences = load_sentences(path, limits)
    if path.suffix.lower() not in (".csv", ".tsv"):
        return sentences, None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "topic" not in header or not ({"text", "sentence"} & set(header)):
        return sentences, None
    text_col = header.index("text") if "text" in header else header.index("sentence")
    topic_col = header.index("topic")
    topic_of: dict[str, str] = {}
    for row in rows[1:]:
        if len(row) == len(header) and row[text_col].strip():
            topic_of.setdefault(row[text_col].strip(), row[topic_col].strip() or "(none)")
    return sentences, [topic_of.get(s, "(none)") for s in sentences]
