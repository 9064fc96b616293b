"""Reading user files: every format, and a plain-words message for every bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from simcse_core.data import (
    DEFAULT_LIMITS,
    DataError,
    DataLimits,
    TrainingData,
    load_pairs,
    load_sentences,
    load_training_data,
    load_triplets,
    sentences_from_text,
)


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def _error(loader, path: Path, *args) -> str:
    with pytest.raises(DataError) as info:
        loader(path, *args)
    return str(info.value)


# ---------------------------------------------------------------- good files


def test_txt_sentences_are_stripped_deduplicated_and_blank_lines_dropped(tmp_path) -> None:
    path = _write(tmp_path, "s.txt", "  A man plays.  \n\nA dog runs.\r\nA man plays.\n   \nThe sea.\n")
    assert load_sentences(path) == ["A man plays.", "A dog runs.", "The sea."]


def test_csv_quoting_header_and_extra_columns(tmp_path) -> None:
    path = _write(tmp_path, "corpus.csv", 'Text,Topic\n"Hello, world",greeting\n"He said ""hi""",talk\n')
    assert load_sentences(path) == ["Hello, world", 'He said "hi"']


def test_headerless_csv_keeps_its_first_row(tmp_path) -> None:
    path = _write(tmp_path, "s.csv", "First sentence\nSecond sentence\n")
    assert load_sentences(path) == ["First sentence", "Second sentence"]


def test_utf8_with_bom_is_accepted_and_its_header_recognised(tmp_path) -> None:
    path = _write(tmp_path, "bom.csv", "\ufeffsentence\nCafé crème\nNaïve\n".encode())
    assert load_sentences(path) == ["Café crème", "Naïve"]


def test_tsv_and_jsonl_sentences(tmp_path) -> None:
    tsv = _write(tmp_path, "s.tsv", "text\nOne, with comma\nTwo\n")
    assert load_sentences(tsv) == ["One, with comma", "Two"]
    jsonl = _write(tmp_path, "s.jsonl", '{"text": " One "}\n\n{"text": "Two"}\n{"text": "One"}\n')
    assert load_sentences(jsonl) == ["One", "Two"]


def test_pairs_drop_exact_duplicate_rows_and_allow_identical_sides(tmp_path) -> None:
    path = _write(tmp_path, "p.csv", "a,b\nsame,same\n a , b \nb,a\n")
    assert load_pairs(path) == [("a", "b"), ("same", "same"), ("b", "a")]


def test_triplets_with_header_in_any_column_order(tmp_path) -> None:
    path = _write(tmp_path, "t.csv", "Hard Negative,anchor,positive\nn1,a1,p1\nn2,a2,p2\n")
    assert load_triplets(path) == [("a1", "p1", "n1"), ("a2", "p2", "n2")]


@pytest.mark.parametrize(
    ("name", "content", "mode", "kind", "examples"),
    [
        ("s.txt", "one\ntwo\none\n", "unsup", "sentences", ["one", "two"]),
        ("p.csv", "a,b\nc,d\n", "sup", "pairs", [("a", "b"), ("c", "d")]),
        ("t.tsv", "a\tb\tc\nd\te\tf\n", "sup", "triplets", [("a", "b", "c"), ("d", "e", "f")]),
        ("h.csv", "sentence1,sentence2,score\na,b,5\nc,d,4.5\n", "sup", "pairs", [("a", "b"), ("c", "d")]),
        ("j.jsonl", '{"anchor": "a", "positive": "b", "negative": "c"}\n'
                    '{"anchor": "d", "positive": "e", "negative": "f"}\n',
         "sup", "triplets", [("a", "b", "c"), ("d", "e", "f")]),
        ("j2.jsonl", '{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "c", "sentence2": "d"}\n',
         "sup", "pairs", [("a", "b"), ("c", "d")]),
    ],
)
def test_load_training_data_detects_the_kind(tmp_path, name, content, mode, kind, examples) -> None:
    data = load_training_data(_write(tmp_path, name, content))
    assert (data.mode, data.kind, data.examples, data.source) == (mode, kind, examples, name)


def test_summary_in_plain_words() -> None:
    assert TrainingData("unsup", "sentences", ["a"] * 812).summary() == "812 sentences (unsupervised)"
    assert TrainingData("sup", "pairs", [("a", "b")] * 3).summary() == "3 pairs (supervised)"
    assert TrainingData("sup", "triplets", [("a", "b", "c")] * 1200).summary() == (
        "1,200 triplets (supervised, with hard negatives)")


def test_limits_are_one_frozen_config() -> None:
    assert DEFAULT_LIMITS == DataLimits(max_rows=20_000, max_chars=1_000, max_bytes=20_000_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_rows = 5  # type: ignore[misc]


def test_sentences_from_pasted_text() -> None:
    assert sentences_from_text(" a \n\nb\na\n") == ["a", "b"]


# ---------------------------------------------------------------- bad files: message names file, line, fix


def test_empty_file(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "empty.txt", b""))
    assert "empty.txt is empty" in message and "one per line" in message


def test_only_blank_lines(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "blank.csv", "\n  \n\t\n"))
    assert "blank.csv contains only blank lines" in message and "Add sentences" in message


def test_binary_file(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "sheet.csv", b"PK\x03\x04\x00\x00binary"))
    assert "sheet.csv is not a text file" in message and "Export it as CSV" in message


def test_utf16_file(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "u16.txt", "hello\nworld\n".encode("utf-16")))
    assert "u16.txt is saved as UTF-16" in message and "UTF-8" in message


def test_not_utf8_names_the_line_and_the_fix(tmp_path) -> None:
    content = "fine\nalso fine\ncaf\xe9 au lait\n".encode("cp1252")
    message = _error(load_sentences, _write(tmp_path, "latin.txt", content))
    assert "latin.txt, line 3" in message and "not UTF-8" in message and "Save the file" in message


def test_too_many_columns_for_training(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "wide.csv", "a,b,c,d\ne,f,g,h\n"))
    assert "wide.csv has 4 columns" in message and "Remove the extra columns" in message


def test_mixed_column_counts_name_the_line(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "mixed.csv", "a,b\nc,d\nI like cats, dogs,x\n"))
    assert "mixed.csv, line 3" in message and "3 columns but line 1 has 2" in message
    assert "double quotes" in message


def test_sentences_loader_rejects_pairs_without_header(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "pairs.csv", "a,b\nc,d\n"))
    assert "pairs.csv has 2 columns" in message and "a sentences file has 1 column" in message
    assert "header" in message


def test_unclosed_quote_names_its_line(tmp_path) -> None:
    message = _error(load_pairs, _write(tmp_path, "quote.csv", 'a,b\n"unclosed,c\nd,e\n'))
    assert "quote.csv, line 2" in message and "never closed" in message
    assert "Remove the stray quote" in message


def test_too_many_rows(tmp_path) -> None:
    path = _write(tmp_path, "big.txt", "".join(f"sentence {i}\n" for i in range(11)))
    message = _error(load_sentences, path, DataLimits(max_rows=10))
    assert "big.txt has 11 lines; the limit is 10" in message and "split the file" in message
    assert len(load_sentences(path, DataLimits(max_rows=11))) == 11


def test_too_long_line(tmp_path) -> None:
    path = _write(tmp_path, "long.csv", "short,ok\n" + "x" * 51 + ",ok\n")
    message = _error(load_pairs, path, DataLimits(max_chars=50))
    assert "long.csv, line 2" in message and "51 characters" in message and "limit of 50" in message
    assert "Shorten it" in message


def test_file_too_big(tmp_path) -> None:
    path = _write(tmp_path, "huge.txt", "a sentence\n" * 200)
    message = _error(load_sentences, path, DataLimits(max_bytes=1_000))
    assert "huge.txt is 0.0 MB" in message and "limit is 0.001 MB" in message and "Split it" in message


def test_unsupported_extension(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "notes.docx", "text"))
    assert "notes.docx" in message and "'.docx' are not supported" in message and ".txt" in message


def test_missing_file(tmp_path) -> None:
    message = _error(load_sentences, tmp_path / "gone.txt")
    assert "gone.txt" in message and "not found" in message


def test_malformed_jsonl_line(tmp_path) -> None:
    path = _write(tmp_path, "bad.jsonl", '{"text": "ok"}\n{"text": "oops"\n')
    message = _error(load_sentences, path)
    assert "bad.jsonl, line 2: this line is not valid JSON" in message and "one JSON object" in message


def test_jsonl_line_that_is_not_an_object(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "list.jsonl", '{"text": "ok"}\n["a", "b"]\n'))
    assert "list.jsonl, line 2" in message and "not a JSON object" in message


def test_missing_json_key_names_line_and_key(tmp_path) -> None:
    lines = [json.dumps({"anchor": "a", "positive": "b"}), json.dumps({"anchor": "c"})]
    message = _error(load_training_data, _write(tmp_path, "pairs.jsonl", "\n".join(lines)))
    assert 'pairs.jsonl, line 2: the key "positive"' in message and "is missing" in message
    assert "Add it to this line" in message


def test_json_value_that_is_not_text(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "obj.jsonl", '{"text": {"nested": 1}}\n'))
    assert "obj.jsonl, line 1" in message and '"text" must be text' in message


def test_jsonl_without_known_keys(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "keys.jsonl", '{"body": "a"}\n{"body": "b"}\n'))
    assert "keys.jsonl" in message and "names no sentence column" in message and "'text'" in message


def test_empty_cell_in_a_pair(tmp_path) -> None:
    message = _error(load_pairs, _write(tmp_path, "holes.csv", "a,b\nc,\n"))
    assert "holes.csv, line 2: the second sentence is empty" in message
    assert "Fill it in or delete the line" in message


def test_header_without_the_needed_column(tmp_path) -> None:
    message = _error(load_triplets, _write(tmp_path, "t.csv", "anchor,positive\na,b\nc,d\n"))
    assert "t.csv" in message and "no column for the hard negative" in message
    assert "Name that column 'hard_negative'" in message


def test_header_but_no_data(tmp_path) -> None:
    message = _error(load_sentences, _write(tmp_path, "head.csv", "text\n\n"))
    assert "head.csv has a header row but no data" in message


def test_training_needs_two_examples(tmp_path) -> None:
    message = _error(load_training_data, _write(tmp_path, "one.txt", "same\nsame\n"))
    assert "one.txt has only 1 distinct sentence" in message and "at least 2" in message


def test_pasted_text_errors() -> None:
    with pytest.raises(DataError, match="pasted text is empty"):
        sentences_from_text(" \n \n")
    with pytest.raises(DataError, match=r"pasted text, line 2: a sentence of 11 characters"):
        sentences_from_text("ok\n" + "y" * 11, DataLimits(max_chars=10))
    with pytest.raises(DataError, match="has 3 lines; the limit is 2"):
        sentences_from_text("a\nb\nc", DataLimits(max_rows=2))


# --- issue 8.5: a scored-pairs file must not train its low-scoring pairs as matches ------------------------


@pytest.mark.parametrize("content", [
    "sentence1,sentence2,score\nA man plays.,Someone plays.,4.6\nA dog runs.,The market fell.,0.2\n"
    "A kid reads.,A child reads a book.,4.2\nThe sun.,Rain.,1.0\n",
    "A man plays.,Someone plays.,4.6\nA dog runs.,The market fell.,0.2\n"
    "A kid reads.,A child reads a book.,4.2\nThe sun.,Rain.,1.0\n",
])
def test_scored_pairs_keep_only_high_scores_as_positives(tmp_path, content):
    path = tmp_path / "scored.csv"
    path.write_text(content, encoding="utf-8")
    data = load_training_data(path)
    assert (data.mode, data.kind) == ("sup", "pairs")
    assert data.examples == [("A man plays.", "Someone plays."), ("A kid reads.", "A child reads a book.")]
    assert "2 of its 4 pairs were kept" in data.note and "4 or more (of 5)" in data.note


def test_scored_pairs_on_a_0_to_1_scale(tmp_path):
    path = tmp_path / "scored.jsonl"
    rows = [("a b", "c d", 0.9), ("e f", "g h", 0.1), ("i j", "k l", 0.85)]
    path.write_text("".join(f'{{"sentence1": "{a}", "sentence2": "{b}", "score": {s}}}\n' for a, b, s in rows),
                    encoding="utf-8")
    data = load_training_data(path)
    assert data.examples == [("a b", "c d"), ("i j", "k l")] and "0.8 or more (of 1)" in data.note


def test_scored_pairs_with_too_few_positives_are_refused(tmp_path):
    path = tmp_path / "low.csv"
    path.write_text("sentence1,sentence2,score\na,b,1\nc,d,2\ne,f,4.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"low.csv is a scored-pairs file.*1 of its 3 pairs.*at least 2"):
        load_training_data(path)


def test_a_triplet_file_is_not_mistaken_for_scored_pairs(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a man,a person,1 dog\nb,c,d\n", encoding="utf-8")
    assert load_training_data(path).kind == "triplets"


def test_a_header_row_of_unknown_names_is_refused_naming_them(tmp_path) -> None:
    path = _write(tmp_path, "t.csv", "foo,bar,baz\nA man plays.,A man is playing.,A dog sleeps.\n"
                                     "The sea is blue.,The ocean is blue.,A car drives.\n")
    message = _error(load_training_data, path)
    assert "t.csv" in message and "foo, bar, baz" in message and "anchor" in message
    plain = _write(tmp_path, "p.csv", "Hello,World\nA man plays.,A man is playing.\n")  # one-word sentences: kept
    assert load_pairs(plain) == [("Hello", "World"), ("A man plays.", "A man is playing.")]
