"""Checks the bundled data in ``assets/``: formats, sizes, topics, score bands and encodings.

Uses only the standard library (``csv``), so a broken asset is reported even when the model stack is missing.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MAX_CHARS = 300
DATA_FILES = ("corpus.csv", "demo_sts_pairs.csv", "sample_unsup.txt", "sample_sup.csv")
LESSON_FILE = "lesson_sentences.txt"  # from the raw model's corpus, under its sources' licences (not CC0)
SCORE_BANDS = ((0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0))  # last band includes 5.0


def _read_csv(name: str) -> tuple[list[str], list[list[str]]]:
    with open(ASSETS / name, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _read_lines(name: str) -> list[str]:
    return (ASSETS / name).read_text(encoding="utf-8").splitlines()


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _band(score: float) -> int:
    for index, (low, high) in enumerate(SCORE_BANDS):
        if low <= score < high or (high == 5.0 and score == 5.0):
            return index
    raise ValueError(f"score {score} is outside [0, 5]")


def _assert_clean_cells(rows: list[list[str]], width: int) -> None:
    for line, row in enumerate(rows, start=2):
        assert len(row) == width, f"line {line}: expected {width} fields, got {len(row)}"
        for cell in row:
            assert cell.strip(), f"line {line}: empty cell"
            assert cell == cell.strip(), f"line {line}: leading/trailing whitespace in {cell!r}"
            assert len(cell) <= MAX_CHARS, f"line {line}: cell longer than {MAX_CHARS} chars"
            assert "\n" not in cell and "\r" not in cell, f"line {line}: line break inside a cell"


@pytest.mark.parametrize("name", [*DATA_FILES, "README.md", "LICENSE.md"])
def test_files_are_utf8_without_nul_or_bom(name: str) -> None:
    raw = (ASSETS / name).read_bytes()
    assert raw, f"{name} is empty"
    assert b"\x00" not in raw, f"{name} contains NUL bytes"
    assert not raw.startswith(b"\xef\xbb\xbf"), f"{name} starts with a byte-order mark"
    raw.decode("utf-8")  # raises UnicodeDecodeError if not UTF-8


def test_corpus_shape_and_topics() -> None:
    header, rows = _read_csv("corpus.csv")
    assert header == ["text", "topic"]
    assert 1000 <= len(rows) <= 1200
    _assert_clean_cells(rows, width=2)

    texts = [_normalise(text) for text, _ in rows]
    duplicates = [text for text, count in Counter(texts).items() if count > 1]
    assert not duplicates, f"duplicate corpus sentences: {duplicates[:5]}"

    topics = Counter(topic for _, topic in rows)
    assert len(topics) >= 10, f"only {len(topics)} topics"
    small = {topic: count for topic, count in topics.items() if count < 60}
    assert not small, f"topics with fewer than 60 sentences: {small}"
    assert max(topics.values()) <= 2 * min(topics.values()), f"topics are unbalanced: {topics}"


def test_corpus_sentences_are_short() -> None:
    _, rows = _read_csv("corpus.csv")
    bad = [text for text, _ in rows if not 6 <= len(text.split()) <= 20]
    assert not bad, f"sentences outside 6-20 words: {bad[:5]}"


def test_demo_pairs_scores_and_bands() -> None:
    header, rows = _read_csv("demo_sts_pairs.csv")
    assert header == ["sentence1", "sentence2", "score"]
    assert 120 <= len(rows) <= 200
    _assert_clean_cells(rows, width=3)

    pairs = [(_normalise(a), _normalise(b)) for a, b, _ in rows]
    assert len(set(pairs)) == len(pairs), "duplicate sentence pairs"
    assert all(a != b for a, b in pairs), "a pair compares a sentence with itself"

    bands: Counter[int] = Counter()
    for line, (_, _, score_text) in enumerate(rows, start=2):
        assert re.fullmatch(r"\d\.\d", score_text), f"line {line}: score {score_text!r} is not one decimal"
        score = float(score_text)
        assert 0.0 <= score <= 5.0, f"line {line}: score {score} outside [0, 5]"
        bands[_band(score)] += 1
    for index, (low, high) in enumerate(SCORE_BANDS):
        assert bands[index] >= 20, f"band [{low}, {high}) has only {bands[index]} pairs"


def test_demo_pairs_include_hard_cases() -> None:
    _, rows = _read_csv("demo_sts_pairs.csv")
    scores = {(a, b): float(s) for a, b, s in rows}
    negation = scores.get(("The cat is on the mat.", "The cat is not on the mat."))
    swap = scores.get(("The dog bit the man.", "The man bit the dog."))
    assert negation is not None and 1.5 <= negation <= 2.5
    assert swap is not None and swap < 4.0


def test_sample_unsup_lines() -> None:
    lines = _read_lines("sample_unsup.txt")
    assert 300 <= len(lines) <= 500
    assert all(line.strip() and line == line.strip() for line in lines), "blank or padded line"
    assert all(len(line) <= MAX_CHARS for line in lines)
    normalised = [_normalise(line) for line in lines]
    assert len(set(normalised)) == len(normalised), "duplicate lines"


def test_sample_unsup_is_drawn_from_corpus() -> None:
    _, rows = _read_csv("corpus.csv")
    topic_of = {text: topic for text, topic in rows}
    lines = _read_lines("sample_unsup.txt")
    missing = [line for line in lines if line not in topic_of]
    assert not missing, f"lines not in corpus.csv: {missing[:5]}"
    topics = Counter(topic_of[line] for line in lines)
    assert len(topics) == len(set(topic_of.values())), "sample_unsup.txt misses a topic"


def test_sample_sup_triplets() -> None:
    header, rows = _read_csv("sample_sup.csv")
    assert header == ["anchor", "positive", "hard_negative"]
    assert 200 <= len(rows) <= 300
    _assert_clean_cells(rows, width=3)
    for line, row in enumerate(rows, start=2):
        assert len({_normalise(cell) for cell in row}) == 3, f"line {line}: fields are not distinct"
    anchors = [_normalise(row[0]) for row in rows]
    assert len(set(anchors)) == len(anchors), "duplicate anchors"


def _readme_rows() -> dict[str, int]:
    text = (ASSETS / "README.md").read_text(encoding="utf-8")
    return {name: int(count) for name, count in re.findall(r"^\| `([\w.]+)` \| (\d+) \|", text, re.MULTILINE)}


def _count_rows(name: str) -> int:
    if name.endswith(".txt"):
        return len(_read_lines(name))
    return len(_read_csv(name)[1])


def test_readme_row_counts_match_files() -> None:
    documented = _readme_rows()
    assert set(documented) == {*DATA_FILES, LESSON_FILE}
    for name, count in documented.items():
        assert _count_rows(name) == count, f"README says {name} has {count} rows"


def test_license_is_cc0_and_names_every_file() -> None:
    text = (ASSETS / "LICENSE.md").read_text(encoding="utf-8")
    assert "CC0-1.0" in text
    assert f"`{LESSON_FILE}` is not covered by the CC0 waiver" in " ".join(text.split())
    for name in DATA_FILES:
        assert f"`{name}`" in text, f"LICENSE.md does not describe {name}"


def test_lesson_sentences_hold_no_sts_b_or_demo_sentence() -> None:
    from simcse_core.pretraining.corpus import evaluation_sentences, normalise

    stsb = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stsb"
    blocked, checked = evaluation_sentences(stsb if stsb.is_dir() else None, ASSETS)
    assert any("STS-B" in name for name in checked)
    lines = _read_lines(LESSON_FILE)
    assert len(lines) == 20_000 and len(set(lines)) == 20_000
    assert not [line for line in lines if normalise(line) in blocked]
