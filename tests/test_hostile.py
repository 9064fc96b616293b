"""Hostile input, field by field: every bad value gets a message that names what is wrong, and the app keeps
working for the same visitor afterwards (the follow-up request in each case).

The handlers are called as Gradio calls them (the app's setting components pass values through unchanged, so
an API caller's NaN or out-of-range value reaches these checks). Tiny random model; no server.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pytest

from ui.present import text
from ui.serving.config import StudioConfig
from ui.serving.registry import ModelRegistry
from ui.serving.session import FINETUNED_LABEL, Session
from ui.serving.studio import Studio
from ui.tabs import embedding_map, evaluate, finetune, retrieval, similarity
from ui.tabs.inside import loss, twins

NAN, INF = math.nan, math.inf
SAMPLE = text.SAMPLE_UNSUP
GOOD_SETTINGS = dict(mode="unsup", steps=2, batch_size=4, lr=1e-4, temperature=0.05, dropout=0.1,
                     pooler="mean", max_length=16, budget=30)
FILES: dict[str, bytes] = {
    "empty.txt": b"",
    "one.txt": b"only one sentence\n",
    "long.txt": b"x" * 1200 + b"\n",
    "utf16.txt": "a cat\nb dog\n".encode("utf-16"),
    "binary.txt": b"PK\x03\x04\x00\x00binary\x00data",
    "cols4.csv": b"a,b,c,d\nw,x,y,z\n",
    "sheet.xlsx": b"hello",
    "nokey.jsonl": b'{"foo": 1}\n',
    "broken.jsonl": b"not json\n",
    "rows.txt": "\n".join(f"sentence {i}" for i in range(20_001)).encode(),
    "pairs.csv": b"sentence1,sentence2,score\na cat,a dog,high\nthe sea,a boat,3\n",
    "onepair.csv": b"sentence1,sentence2,score\na cat,a dog,4\n",
    "corpus.txt": b"the man plays the guitar\na woman plays the piano\nthe dog runs in the park\n",
    "sup.csv": b"anchor,positive\na cat,a small cat\nthe dog,a dog\nthe sea,the ocean\n",
}


@pytest.fixture(scope="module")
def studio(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", live_eval_pairs=24,
                          temp_root=str(tmp_path_factory.mktemp("sessions")))
    return Studio(config, ModelRegistry(config))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hostile-files")
    paths = {}
    for name, content in FILES.items():
        (folder / name).write_bytes(content)
        paths[name] = str(folder / name)
    paths["missing.txt"] = str(folder / "missing.txt")
    return paths


def _ft(studio: Studio, base: str, session, data=SAMPLE, upload=None, picker=None, **changes):
    settings = {**GOOD_SETTINGS, **changes}
    form = finetune.FinetuneForm(data_choice=data, upload=upload, picker=picker or base, start="picked", **settings)
    return list(finetune.run_finetune(studio, form=form, session=session))


Case = Callable[[Studio, str, Session, dict], object]
# (case id, call, regex the message must match)
CASES: list[tuple[str, Case, str]] = [
    # --- Similarity: sentence A, sentence B, model picker, pooler picker
    ("sim-a-empty", lambda s, b, ss, f: similarity.score_pair(s, a="", b="a cat", choice=b, pooler="mean", session=ss), "first sentence is empty"),
    ("sim-b-blank", lambda s, b, ss, f: similarity.score_pair(s, a="a cat", b="  \n\t", choice=b, pooler="mean", session=ss),
     "second sentence is empty"),
    ("sim-a-none", lambda s, b, ss, f: similarity.score_pair(s, a=None, b="a cat", choice=b, pooler="mean", session=ss), "first sentence is empty"),
    ("sim-a-number", lambda s, b, ss, f: similarity.score_pair(s, a=42, b="a cat", choice=b, pooler="mean", session=ss), "first sentence must be text"),
    ("sim-b-list", lambda s, b, ss, f: similarity.score_pair(s, a="a cat", b=["x"], choice=b, pooler="mean", session=ss),
     "second sentence must be text"),
    ("sim-a-5mb", lambda s, b, ss, f: similarity.score_pair(s, a="x" * 5_000_000, b="a cat", choice=b, pooler="mean", session=ss),
     r"5,000,000 characters; the limit is 1,000"),
    ("sim-b-1001", lambda s, b, ss, f: similarity.score_pair(s, a="a cat", b="y" * 1001, choice=b, pooler="mean", session=ss),
     "the limit is 1,000"),
    ("model-server-folder", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="/root", pooler="mean", session=ss),
     r"^Model: '/root' is not one of this app's models"),
    ("model-dotdot", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice=str(Path(s.config.model) / ".." / Path(s.config.model).name),
                                                               pooler="mean", session=ss), "is not one of this app's models"),
    ("model-missing-folder", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="/no/such/folder", pooler="mean", session=ss),
     "is not one of this app's models"),
    ("model-5000-chars", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="m" * 5000, pooler="mean", session=ss),
     r"'m{59}…' is not one of"),
    ("model-surrogate", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="bad\ud800id", pooler="mean", session=ss),
     r"'bad\?id' is not one of"),
    ("model-hub-offline", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="bert-base-uncased", pooler="mean", session=ss),
     "hub model, and this server works offline"),
    ("model-run-before-any", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice=FINETUNED_LABEL, pooler="mean", session=ss),
     "no such fine-tuned run"),
    ("model-run-unknown", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice="run 99 · unsup · 1 steps", pooler="mean", session=ss),
     "no such fine-tuned run"),
    ("pooler-unknown", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice=b, pooler="max", session=ss),
     r"^Pooler: 'max' is not one of the choices"),
    ("pooler-number", lambda s, b, ss, f: similarity.score_pair(s, a="a", b="b", choice=b, pooler=3, session=ss), "^Pooler: '3'"),
    # --- Heatmap list
    ("list-empty", lambda s, b, ss, f: similarity.heatmap(s, lines="", choice=b, pooler="mean", session=ss), "list is empty"),
    ("list-one", lambda s, b, ss, f: similarity.heatmap(s, lines="one line\n\n", choice=b, pooler="mean", session=ss), "at least two"),
    ("list-41", lambda s, b, ss, f: similarity.heatmap(s, lines="\n".join(f"s {i}" for i in range(41)), choice=b, pooler="mean", session=ss),
     "at most 40"),
    ("list-5mb", lambda s, b, ss, f: similarity.heatmap(s, lines="x\n" * 2_500_000, choice=b, pooler="mean", session=ss),
     "characters; the limit is 40,040"),
    ("list-long-line", lambda s, b, ss, f: similarity.heatmap(s, lines="a cat\n" + "z" * 1001, choice=b, pooler="mean", session=ss),
     "1,001 characters|longer than the limit"),
    ("list-not-text", lambda s, b, ss, f: similarity.heatmap(s, lines=7, choice=b, pooler="mean", session=ss), "must be text"),
    # --- Retrieval: query, top-k, minimum score, corpus choice, corpus upload
    ("query-empty", lambda s, b, ss, f: retrieval.search(s, query="", top_k=5, threshold=-1, choice=b, pooler="mean", session=ss), "query is empty"),
    ("query-long", lambda s, b, ss, f: retrieval.search(s, query="q" * 2000, top_k=5, threshold=-1, choice=b, pooler="mean", session=ss), "query has 2,000"),
    ("topk-nan", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=NAN, threshold=-1, choice=b, pooler="mean", session=ss), "^Top-k: nan is not a number"),
    ("topk-inf", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=INF, threshold=-1, choice=b, pooler="mean", session=ss), "^Top-k: inf is not a number"),
    ("topk-zero", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=0, threshold=-1, choice=b, pooler="mean", session=ss), "^Top-k: 0 is outside"),
    ("topk-huge", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=10**9, threshold=-1, choice=b, pooler="mean", session=ss), "^Top-k: 1e\\+09 is outside"),
    ("topk-fraction", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=2.5, threshold=-1, choice=b, pooler="mean", session=ss), "not a whole number"),
    ("topk-text", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k="five", threshold=-1, choice=b, pooler="mean", session=ss), "^Top-k: enter a number"),
    ("threshold-nan", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=5, threshold=NAN, choice=b, pooler="mean", session=ss), "^Minimum score: nan"),
    ("threshold-high", lambda s, b, ss, f: retrieval.search(s, query="a cat", top_k=5, threshold=2, choice=b, pooler="mean", session=ss),
     "^Minimum score: 2 is outside the allowed range -1 to 1"),
    ("corpus-choice", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice="/etc/passwd", upload=None, choice=b, pooler="mean", session=ss),
     "^Corpus: '/etc/passwd' is not one of the choices"),
    ("corpus-no-file", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=None, choice=b, pooler="mean", session=ss),
     "^Corpus file: choose a file"),
    ("corpus-empty", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["empty.txt"], choice=b, pooler="mean", session=ss),
     "empty.txt is empty"),
    ("corpus-one", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["one.txt"], choice=b, pooler="mean", session=ss),
     "only 1 distinct sentence"),
    ("corpus-long-line", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["long.txt"], choice=b, pooler="mean",
                                                                   session=ss), "line 1: a sentence of 1,200 characters"),
    ("corpus-utf16", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["utf16.txt"], choice=b, pooler="mean", session=ss),
     "UTF-16"),
    ("corpus-binary", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["binary.txt"], choice=b, pooler="mean",
                                                                session=ss), "not a text file"),
    ("corpus-4-columns", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["cols4.csv"], choice=b, pooler="mean",
                                                                   session=ss), "4 columns"),
    ("corpus-xlsx", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["sheet.xlsx"], choice=b, pooler="mean", session=ss),
     "not supported"),
    ("corpus-jsonl-no-text", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["nokey.jsonl"], choice=b,
                                                                       pooler="mean", session=ss), '"text".*missing'),
    ("corpus-jsonl-broken", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["broken.jsonl"], choice=b,
                                                                      pooler="mean", session=ss), "not valid JSON"),
    ("corpus-too-many-rows", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["rows.txt"], choice=b,
                                                                       pooler="mean", session=ss), "20,001 lines; the limit is 20,000"),
    ("corpus-vanished", lambda s, b, ss, f: retrieval.build_index(s, corpus_choice=text.UPLOAD_CORPUS, upload=f["missing.txt"], choice=b, pooler="mean",
                                                                  session=ss), "not found"),
    # --- Fine-tune: every setting, the data choice, the upload, the model
    ("lr-negative", lambda s, b, ss, f: _ft(s, b, ss, lr=-1), "^Learning rate: -1 is outside the allowed range"),
    ("lr-nan", lambda s, b, ss, f: _ft(s, b, ss, lr=NAN), "^Learning rate: nan is not a number"),
    ("lr-none", lambda s, b, ss, f: _ft(s, b, ss, lr=None), "^Learning rate: enter a number"),
    ("lr-text", lambda s, b, ss, f: _ft(s, b, ss, lr="fast"), "^Learning rate: enter a number"),
    ("lr-huge", lambda s, b, ss, f: _ft(s, b, ss, lr=1.0), "^Learning rate: 1 is outside"),
    ("steps-zero", lambda s, b, ss, f: _ft(s, b, ss, steps=0), "^Steps: 0 is outside the allowed range 1 to 2000"),
    ("steps-nan", lambda s, b, ss, f: _ft(s, b, ss, steps=NAN), "^Steps: nan is not a number"),
    ("steps-over", lambda s, b, ss, f: _ft(s, b, ss, steps=2001), "^Steps: 2001 is outside"),
    ("steps-fraction", lambda s, b, ss, f: _ft(s, b, ss, steps=2.5), "^Steps: 2.5 is not a whole number"),
    ("batch-one", lambda s, b, ss, f: _ft(s, b, ss, batch_size=1), "^Batch size: 1 is outside the allowed range 2"),
    ("batch-nan", lambda s, b, ss, f: _ft(s, b, ss, batch_size=NAN), "^Batch size: nan is not a number"),
    ("batch-over", lambda s, b, ss, f: _ft(s, b, ss, batch_size=4096), "^Batch size: 4096 is outside"),
    ("temperature-zero", lambda s, b, ss, f: _ft(s, b, ss, temperature=0), "^Temperature τ: 0 is outside"),
    ("temperature-inf", lambda s, b, ss, f: _ft(s, b, ss, temperature=INF), "^Temperature τ: inf is not a number"),
    ("dropout-high", lambda s, b, ss, f: _ft(s, b, ss, dropout=0.9), "^Dropout: 0.9 is outside"),
    ("dropout-negative", lambda s, b, ss, f: _ft(s, b, ss, dropout=-0.1), "^Dropout: -0.1 is outside"),
    ("maxlen-tiny", lambda s, b, ss, f: _ft(s, b, ss, max_length=4), "^Max length: 4 is outside"),
    ("maxlen-nan", lambda s, b, ss, f: _ft(s, b, ss, max_length=NAN), "^Max length: nan is not a number"),
    ("budget-short", lambda s, b, ss, f: _ft(s, b, ss, budget=5), r"^Time budget \(seconds\): 5 is outside"),
    ("budget-long", lambda s, b, ss, f: _ft(s, b, ss, budget=3600),
     r"^Time budget \(seconds\): 3600 is outside the allowed range 10 to 300"),
    ("mode-unknown", lambda s, b, ss, f: _ft(s, b, ss, mode="both"), "^Mode: 'both' is not one of the choices"),
    ("ft-pooler-unknown", lambda s, b, ss, f: _ft(s, b, ss, pooler="max"), "^Pooler: 'max'"),
    ("mode-mismatch", lambda s, b, ss, f: _ft(s, b, ss, data=text.SAMPLE_SUP), "^Mode: the data are"),
    ("data-choice-path", lambda s, b, ss, f: _ft(s, b, ss, data="/etc/passwd"), "^Training data: '/etc/passwd'"),
    ("train-no-file", lambda s, b, ss, f: _ft(s, b, ss, data=text.UPLOAD_TRAINING), "^Training file: choose a file"),
    ("train-4-columns", lambda s, b, ss, f: _ft(s, b, ss, data=text.UPLOAD_TRAINING, upload=f["cols4.csv"]),
     "4 columns"),
    ("train-empty", lambda s, b, ss, f: _ft(s, b, ss, data=text.UPLOAD_TRAINING, upload=f["empty.txt"]), "is empty"),
    ("train-one-sentence", lambda s, b, ss, f: _ft(s, b, ss, data=text.UPLOAD_TRAINING, upload=f["one.txt"]),
     "only 1 distinct sentence"),
    ("train-binary", lambda s, b, ss, f: _ft(s, b, ss, data=text.UPLOAD_TRAINING, upload=f["binary.txt"]),
     "not a text file"),
    ("train-model-folder", lambda s, b, ss, f: _ft(s, b, ss, picker="/tmp"), "^Model: '/tmp' is not one"),
    ("train-model-run-missing", lambda s, b, ss, f: _ft(s, b, ss, picker="run 3 · sup · 9 steps"),
     "no such fine-tuned run"),
    # --- Embedding map and Evaluate
    ("map-model-folder", lambda s, b, ss, f: embedding_map.draw_map(s, show_moves=False, choice="/", pooler="mean", session=ss),
     "^Model: '/' is not one"),
    ("map-pooler", lambda s, b, ss, f: embedding_map.draw_map(s, show_moves=False, choice=b, pooler="nope", session=ss), "^Pooler: 'nope'"),
    ("eval-set-unknown", lambda s, b, ss, f: evaluate.evaluate(s, set_choice="../../etc", upload=None, choice=b, pooler="mean", session=ss),
     "^Evaluation set: '../../etc' is not one of the choices"),
    ("eval-no-file", lambda s, b, ss, f: evaluate.evaluate(s, set_choice=evaluate.UPLOAD, upload=None, choice=b, pooler="mean", session=ss),
     "Choose a file of scored pairs"),
    ("eval-score-not-number", lambda s, b, ss, f: evaluate.evaluate(s, set_choice=evaluate.UPLOAD, upload=f["pairs.csv"], choice=b, pooler="mean", session=ss),
     "not a number"),
    ("eval-one-pair", lambda s, b, ss, f: evaluate.evaluate(s, set_choice=evaluate.UPLOAD, upload=f["onepair.csv"], choice=b, pooler="mean", session=ss),
     "needs at least 2"),
    ("eval-binary", lambda s, b, ss, f: evaluate.evaluate(s, set_choice=evaluate.UPLOAD, upload=f["binary.txt"], choice=b, pooler="mean", session=ss),
     "not a text file"),
    # --- Inside SimCSE: dropout twins and the loss panel (every field bounded by simcse_core.limits)
    ("twins-8-lines-of-1mb", lambda s, b, ss, f: twins.show_twins(s, text="\n".join(["x" * 1_000_000] * 8), dropout=0.1, choice=b, pooler="mean", session=ss),
     r"^The Sentences box has 8,000,007"),
    ("twins-long-line", lambda s, b, ss, f: twins.show_twins(s, text="a cat\n" + "y" * 1001, dropout=0.1, choice=b, pooler="mean", session=ss),
     "line 2: a sentence has more than 1,000"),
    ("twins-nine", lambda s, b, ss, f: twins.show_twins(s, text="\n".join(["a cat"] * 9), dropout=0.1, choice=b, pooler="mean", session=ss),
     "needs 1 to 8 lines"),
    ("twins-number", lambda s, b, ss, f: twins.show_twins(s, text=42, dropout=0.1, choice=b, pooler="mean", session=ss), "Sentences box must be text"),
    ("twins-dropout-nan", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout=NAN, choice=b, pooler="mean", session=ss),
     "^Dropout rate: nan is not a number"),
    ("twins-dropout-text", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout="abc", choice=b, pooler="mean", session=ss),
     "^Dropout rate: enter a number"),
    ("twins-dropout-none", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout=None, choice=b, pooler="mean", session=ss),
     "^Dropout rate: enter a number"),
    ("twins-dropout-list", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout=[0.1], choice=b, pooler="mean", session=ss),
     "^Dropout rate: enter a number"),
    ("twins-model-number", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout=0.1, choice=7, pooler="mean", session=ss, start="picked"),
     "^Model: '7'"),
    ("twins-start", lambda s, b, ss, f: twins.show_twins(s, text="a cat", dropout=0.1, choice=b, pooler="mean", session=ss, start="elsewhere"),
     "^Start from: 'elsewhere' is not one of"),
    ("loss-2-lines-of-500k", lambda s, b, ss, f: loss.encode_batch(s, text="a" * 500_000 + "\n" + "b" * 500_000, mode="unsup", dropout=0.1, temperature=0.05, alpha=1, choice=b, pooler="mean", session=ss),
     "Batch box has 1,000,001 characters"),
    ("loss-mode", lambda s, b, ss, f: loss.encode_batch(s, text="a cat\na dog", mode="both", dropout=0.1, temperature=0.05, alpha=1, choice=b, pooler="mean", session=ss),
     "^Batch mode: 'both' is not one of"),
    ("loss-dropout-nan", lambda s, b, ss, f: loss.encode_batch(s, text="a cat\na dog", mode="unsup", dropout=NAN, temperature=0.05, alpha=1, choice=b, pooler="mean", session=ss),
     "^Dropout rate: nan"),
    ("loss-temperature-inf", lambda s, b, ss, f: loss.encode_batch(s, text="a cat\na dog", mode="unsup", dropout=0.1, temperature=-INF, alpha=1, choice=b, pooler="mean", session=ss),
     "^Temperature τ: -inf"),
    ("loss-alpha-text", lambda s, b, ss, f: loss.encode_batch(s, text="a cat\na dog", mode="unsup", dropout=0.1, temperature=0.05, alpha="abc", choice=b, pooler="mean", session=ss),
     r"^α \(hard negatives\): enter a number"),
    ("rescore-none", lambda s, b, ss, f: loss.rescore(temperature=None, alpha=1, session=ss), "Encode the batch|^Temperature τ: enter"),
    # --- Model picker and runs
    ("pick-folder", lambda s, b, ss, f: _pick(s, "/root", ss), "^Model: '/root' is not one of this app's models"),
    ("pick-hub-offline", lambda s, b, ss, f: _pick(s, "princeton-nlp/sup-simcse-bert-base-uncased", ss),
     "works offline"),
    ("pick-run-missing", lambda s, b, ss, f: _pick(s, FINETUNED_LABEL, ss), "no such fine-tuned run"),
]


def _pick(studio: Studio, choice: str, session):
    from app import pick_model

    return pick_model(studio, choice=choice, pooler="mean", session=session)


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len({case_id for case_id, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, call, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_gets_a_message_and_the_app_keeps_working(studio: Studio, files: dict[str, str],
                                                                 case_id: str, call: Case, message: str) -> None:
    base = studio.config.base_label
    session = Session()
    retrieval.load_corpus(studio, text.UPLOAD_CORPUS, files["corpus.txt"], session)  # earlier work to keep
    with pytest.raises(gr.Error) as raised:
        call(studio, base, session, files)
    shown = raised.value.message
    assert __import__("re").search(message, shown), shown
    assert "Traceback" not in shown and "Sorry" not in shown  # a user error, not an apology
    if "model" not in case_id and "pick" not in case_id:
        assert "/tmp" not in shown and "/root" not in shown  # no server paths in messages about other fields
    # The follow-up requests of the same visitor still work, and their earlier corpus is intact.
    score = similarity.score_pair(studio, a="a cat eats fish", b="the dog runs", choice=base, pooler="mean",
                                  session=session)["score"]
    assert score.startswith("## ")
    table = retrieval.search(studio, query="the man plays the guitar", top_k=2, threshold=-1, choice=base, pooler="mean",
                             session=session)["results"]
    assert "the man plays the guitar" in list(table["Sentence"])
    assert session.training_idle.is_set()  # a refused run never blocks the next one


def test_an_internal_bug_is_logged_with_its_traceback_and_shown_as_an_apology_with_an_id(
        studio: Studio, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise ValueError("index 7 is out of bounds")  # a plain ValueError is a bug, not a user error

    monkeypatch.setattr(studio, "baseline", broken)
    with pytest.raises(gr.Error) as raised:
        similarity.score_pair(studio, a="a cat", b="a dog", choice=studio.config.base_label, pooler="mean", session=Session())
    shown = raised.value.message
    error_id = __import__("re").search(r"error id ([0-9a-f]{8})", shown).group(1)
    assert "index 7" not in shown  # the internal detail stays in the log
    record = next(r for r in caplog.records if error_id in r.getMessage())
    assert record.exc_info is not None and "index 7 is out of bounds" in str(record.exc_info[1])


def test_settings_validator_marks_only_the_wrong_fields(studio: Studio) -> None:
    values = dict(data_choice=SAMPLE, upload=None, **{**GOOD_SETTINGS, "batch_size": 1, "lr": -1},
                  picker=studio.config.base_label, hard_negative_weight=1.0, session=Session())
    wrong = finetune.form_problems(studio, **values)
    assert set(wrong) == {"batch_size", "lr"}  # batch size and learning rate, nothing else
    assert wrong["batch_size"].startswith("Batch size:") and wrong["lr"].startswith("Learning rate:")


# --- the same mistakes over HTTP: every endpoint, every field, as a raw client sends them ---------------------
HOSTILE_VALUES = ["abc", None, [1], {"a": 1}, NAN, -INF, 12345, True, "bad\ud800text"]


def _endpoints(base: str) -> dict[str, list]:
    """Each endpoint's API parameters, with values that are good, or (for runs and slow maps) that stop the request
    at a check (so no case trains or draws a map)."""
    return {
        "similarity": ["a cat", "a dog", base, "mean"],
        "heatmap": ["a cat\na dog", base, "mean"],
        "dropout_twins": ["a cat", 0.1, base, "mean", "picked"],
        "inside_the_loss": ["a cat\na dog", "unsup", 0.1, 0.05, 1.0, base, "mean", "picked"],
        "search": ["a cat", 3, -1, base, "mean"],
        "build_index": [text.BUNDLED_CORPUS, None, base, "mean"],
        "check_training_file": [SAMPLE, None],
        "finetune": [SAMPLE, None, "unsup", 2, 4, 1e-4, 0.05, 0.1, "mean", 16, 5, base, 1.0, "picked"],  # budget 5:
        # refused
        "stop_finetune": [],
        "ablation_preset": ["no-such-preset", base],
        "cone_view": [base],
        "export_tables": [],
        "embedding_map": [False, base, "no-such-pooler"],
        "evaluate": ["no-such-set", None, base, "mean"],
        "pick_model": [base, "mean"],
        "delete_run": [base],
    }


@pytest.fixture(scope="module")
def server(studio: Studio):
    from tests.browser_helpers import serving

    with serving(studio) as port:
        yield f"http://127.0.0.1:{port}/gradio_api"


def call_raw(url: str, api: str, data: list) -> tuple[str, object]:
    """POST /call/<api> then read its event stream, as a raw HTTP client does: ("complete" | "error", data), or
    ("http <status>", body) when the request itself was refused."""
    import json

    import httpx

    body = json.dumps({"data": data})  # NaN and ±inf as Python's json writes them (as gradio_client sends them)
    posted = httpx.post(f"{url}/call/{api}", content=body, headers={"content-type": "application/json"},
                        timeout=60)
    if posted.status_code != 200:
        return f"http {posted.status_code}", posted.json()
    event, last = None, None
    with httpx.stream("GET", f"{url}/call/{api}/{posted.json()['event_id']}", timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                last = json.loads(line.split(":", 1)[1])
                return event, last
    return str(event), last


def _message(kind: str, data: object) -> str | None:
    if kind == "error":
        return data.get("error") if isinstance(data, dict) else data
    if kind.startswith("http"):
        detail = (data or {}).get("detail") or (data or {}).get("error")
        if isinstance(detail, list):  # a validator's answer: one entry per field, the wrong ones with a message
            return " ".join(str(entry.get("message") or "") for entry in detail if isinstance(entry, dict)).strip()
        return detail
    return None


ADDED_LATER = {"dropout_twins": 1, "inside_the_loss": 1, "finetune": 1}  # "Start from" (issue 20)


@pytest.mark.parametrize("api", list(_endpoints("")))
def test_every_field_of_every_endpoint_answers_a_mistake_with_a_message(server: str, studio: Studio, api: str
                                                                        ) -> None:
    good = _endpoints(studio.config.base_label)[api]
    later = ADDED_LATER.get(api, 0)  # parameters an older call leaves out: they get their defaults
    cases = [("too few values", good[:-1 - later] if good else None), ("too many values", [*good, "x", "y"])]
    if later:
        cases.append(("an older call", good[:-later]))
    cases += [(f"field {k} = {value!r}", [*good[:k], value, *good[k + 1:]])
              for k in range(len(good)) for value in HOSTILE_VALUES]
    for case, data in cases:
        if data is None:
            continue
        kind, answer = call_raw(server, api, data)
        assert kind in ("complete", "error") or kind.startswith("http 4"), (api, case, kind, answer)
        if kind != "complete":
            message = _message(kind, answer)
            assert message, (api, case, kind, answer)  # never {"error": null}
            assert "error id" not in message, (api, case, message)  # a message, not the apology for a bug
        if case == "an older call":
            assert "takes" not in str(_message(kind, answer)), (api, answer)
        if case.startswith("too"):
            assert kind != "complete" and f"takes {len(good)} value" in str(_message(kind, answer)), (api, case,
                                                                                                      answer)
        if kind != "complete" and isinstance(data[0] if data else None, str) and case.startswith("field"):
            assert not _message(kind, answer).startswith("'")  # the message itself, not its repr


def test_a_request_body_over_the_cap_is_refused_before_it_is_parsed(server: str, studio: Studio) -> None:
    import httpx

    cap = studio.config.limits.request_bytes
    response = httpx.post(f"{server}/call/similarity", content=b'{"data": ["' + b"x" * cap + b'"]}',
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413 and f"the limit is {cap:,}" in response.json()["error"]
    kind, answer = call_raw(server, "similarity", ["a cat", "a dog", studio.config.base_label, "mean"])
    assert kind == "complete"  # the server is fine afterwards


@pytest.mark.parametrize("index", [10_000, -5, "10000"])
def test_an_unknown_event_number_is_a_4xx_with_a_message(server: str, studio: Studio, index: object) -> None:
    import httpx

    response = httpx.post(f"{server}/queue/join", json={"data": [], "fn_index": index, "session_hash": "hostile"},
                          timeout=60)
    assert response.status_code == 404 and "no event number" in response.json()["error"]  # was a bare 500
    kind, answer = call_raw(server, "similarity", ["a cat", "a dog", studio.config.base_label, "mean"])
    assert kind == "complete"  # the server is fine afterwards


def test_one_upload_limit_in_bytes_for_gradio_and_the_app(studio: Studio) -> None:
    from app import launch_limits
    from simcse_core.data import DataLimits
    from simcse_core.limits import LIMITS

    assert launch_limits(studio.config)["max_file_size"] == studio.config.upload_limits.max_bytes \
        == DataLimits().max_bytes == LIMITS.file_bytes


# --- text is text: a visitor's markup comes back escaped, wherever it is shown ---------------------------------
SCRIPT = "<img src=x onerror=alert(1)>"


def test_a_visitors_markup_is_escaped_in_messages_and_heatmap_labels(studio: Studio, server: str) -> None:
    base = studio.config.base_label
    with pytest.raises(gr.Error) as raised:
        similarity.score_pair(studio, a="a cat", b="a dog", choice=SCRIPT, pooler="mean", session=Session())
    assert "&lt;img src=x onerror=alert(1)&gt;" in raised.value.message and "<img" not in raised.value.message
    figure = similarity.heatmap(studio, lines=f"{SCRIPT}\na cat eats fish", choice=base, pooler="mean",
                                session=Session())["figure"]
    shown = [*figure.data[0].x, *figure.data[0].y, *(str(c) for c in figure.data[0].customdata.ravel())]
    assert any("&lt;img" in label for label in shown) and not any("<img" in label for label in shown)
    kind, answer = call_raw(server, "search", ["a cat", SCRIPT, -1, base, "mean"])  # a field check over HTTP
    assert kind == "error" and "&lt;img" in answer["error"] and "<img" not in answer["error"]
