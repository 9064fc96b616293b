"""Handler-level tests of the Gradio app on the tiny random model: real handlers, real engine, no browser."""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch

from simcse_core.teaching import lessons
from simcse_core.training.train import LIVE_RUN
from ui.present import text
from ui.serving.config import RAW_LABEL, START_PICKED, START_RAW, StudioConfig
from ui.serving.registry import ModelRegistry
from ui.serving.session import FINETUNED_LABEL, ModelKey, Session
from ui.serving.studio import Studio
from ui.tabs import embedding_map, evaluate, finetune, retrieval, similarity

CONTRACT_IDS = {
    "tab-similarity", "tab-retrieval", "tab-finetune", "tab-map", "tab-evaluate",
    "model-picker", "pooler-picker",
    "sim-a", "sim-b", "sim-run", "sim-score", "sim-list", "sim-heatmap-run", "sim-heatmap",
    "ret-corpus-choice", "ret-upload", "ret-build", "ret-status", "ret-query", "ret-topk", "ret-threshold",
    "ret-search", "ret-results", "ret-compare",
    "ft-data-choice", "ft-upload", "ft-mode", "ft-steps", "ft-batch", "ft-lr", "ft-temperature", "ft-dropout",
    "ft-pooler", "ft-maxlen", "ft-budget", "ft-start", "ft-stop", "ft-status", "ft-loss-plot", "ft-au-plot",
    "ft-sts-plot", "ft-download-model", "ft-download-emb", "ft-start-from", "ft-start-note", "inside-start",
    "map-run", "map-show-moves", "map-plot", "map-hist", "map-stats",
    "eval-set", "eval-upload", "eval-run", "eval-table", "eval-scatter", "eval-reference",
}
CORPUS = [
    "the man plays the guitar", "a woman plays the piano", "the dog runs in the park", "a cat eats fish",
    "the stock price fell", "the bank rose", "a child reads a book", "she cooks in the kitchen",
    "the red car drives on the road", "a bird sings by the river", "they play football in the sun",
    "the boat is on the sea",
]


@pytest.fixture(scope="module")
def studio(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Studio:
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="fp32", live_eval_pairs=24,
                          max_map_points=500, temp_root=str(tmp_path_factory.mktemp("sessions")))
    return Studio(config, ModelRegistry(config))


@pytest.fixture(scope="module")
def base_choice(studio: Studio) -> str:
    return studio.config.base_label


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tuned(studio: Studio, base_choice: str, corpus_file: Path) -> tuple[Session, list, dict]:
    """One short real fine-tuning run (shared by the tests that need a fine-tuned model)."""
    session = Session()
    retrieval.load_corpus(studio, text.UPLOAD_CORPUS, str(corpus_file), session)
    shared = studio.registry.get(studio.config.model, "cls_before_pooler")
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    updates = list(finetune.run_finetune(studio, form=_form(base_choice, steps=4, pooler="cls_before_pooler"),
                                         session=session))
    return session, updates, before


def _form(picker: str, **changes) -> finetune.FinetuneForm:
    """A short unsupervised run on the bundled sample from the picked model (the test's changes on top)."""
    settings = dict(data_choice=text.SAMPLE_UNSUP, upload=None, mode="unsup", steps=4, batch_size=8, lr=1e-3,
                    temperature=0.05, dropout=0.1, pooler="mean", max_length=16, budget=120, picker=picker,
                    start=START_PICKED)
    return finetune.FinetuneForm(**{**settings, **changes})


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v)))


def test_build_demo_has_every_contract_id(studio: Studio) -> None:
    from app import build_demo

    demo = build_demo(studio=studio)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert CONTRACT_IDS <= ids, sorted(CONTRACT_IDS - ids)
    assert not studio.registry.is_loaded(studio.config.model)  # building the UI loads no model


def test_similarity_returns_score_and_reading(studio: Studio, base_choice: str) -> None:
    a, b = "the man plays the guitar", "a woman plays the piano"
    out = similarity.score_pair(studio, a=a, b=b, choice=base_choice, pooler="mean", session=Session())["score"]
    encoder = studio.registry.get(studio.config.model, "mean")
    va, vb = encoder.encode([a, b], normalize=False)
    expected = _cos(va, vb)
    shown = float(re.search(r"## (-?\d+\.\d+)", out).group(1))
    assert shown == pytest.approx(expected, abs=0.006)
    baseline = studio.baseline(ModelKey(studio.config.model, "mean"), encoder)
    assert similarity.reading(expected, baseline) in out


def test_reading_bands_are_relative_to_the_baseline() -> None:
    assert similarity.reading(0.95) == text.SCORE_BANDS[0][1]
    assert similarity.reading(0.0) == text.SCORE_BANDS[-1][1]
    # With a crowded model (random pairs at 0.8), 0.85 is only loosely related.
    assert similarity.calibrate(0.85, 0.8) == pytest.approx(0.25)
    assert similarity.reading(0.85, 0.8) == "loosely related"


@pytest.mark.parametrize("a, b", [("", "a cat"), ("   ", "a cat"), ("a cat", "x" * 5000)])
def test_bad_sentence_gives_its_message_as_gr_error(studio: Studio, base_choice: str, a: str, b: str) -> None:
    with pytest.raises(gr.Error, match="empty|limit"):
        similarity.score_pair(studio, a=a, b=b, choice=base_choice, pooler="mean", session=Session())


def test_heatmap_values_equal_encoder_similarity(studio: Studio, base_choice: str) -> None:
    sentences = CORPUS[:6]
    fig = similarity.heatmap(studio, lines="\n".join(sentences) + "\n\n", choice=base_choice, pooler="mean",
                             session=Session())["figure"]
    z = np.asarray(fig.data[0].z)
    assert z.shape == (6, 6)
    vectors = studio.registry.get(studio.config.model, "mean").encode(sentences, normalize=False)
    naive = np.array([[_cos(vectors[i], vectors[j]) for j in range(6)] for i in range(6)])
    np.testing.assert_allclose(z, naive, atol=1e-4)
    assert sentences[2] in fig.data[0].customdata[2][4][0] and sentences[4] in fig.data[0].customdata[2][4][1]


def test_heatmap_rejects_too_many_sentences(studio: Studio, base_choice: str) -> None:
    lines = "\n".join(f"sentence number {i}" for i in range(studio.config.max_heatmap_sentences + 1))
    with pytest.raises(gr.Error, match="at most 40"):
        similarity.heatmap(studio, lines=lines, choice=base_choice, pooler="mean", session=Session())


def test_retrieval_returns_ranked_hits(studio: Studio, base_choice: str, corpus_file: Path) -> None:
    built = retrieval.build_index(studio, corpus_choice=text.UPLOAD_CORPUS, upload=str(corpus_file), choice=base_choice,
                                  pooler="mean", session=Session())
    assert "Index ready" in built["status"] and "12 sentences" in built["status"]
    query = "the dog runs in the park"
    found = retrieval.search(studio, query=query, top_k=5, threshold=-1.0, choice=base_choice, pooler="mean",
                             session=built["session"])
    table, compare = found["results"], found["compare"]
    assert "Searched" in found["status"] and found["compare_note"] == text.COMPARE_HINT
    assert list(table["Rank"]) == [1, 2, 3, 4, 5]
    encoder = studio.registry.get(studio.config.model, "mean")
    vectors = encoder.encode(CORPUS + [query], normalize=False)
    naive = {s: _cos(vectors[-1], v) for v, s in zip(vectors[:-1], CORPUS)}
    # The random tiny model ties some sentences, so check scores, not the order among equals.
    np.testing.assert_allclose(table["Score"], sorted(naive.values(), reverse=True)[:5], atol=2e-3)
    np.testing.assert_allclose(table["Score"], [naive[s] for s in table["Sentence"]], atol=2e-3)
    assert query in list(table["Sentence"])  # the sentence itself is among its best matches
    assert compare.empty  # no fine-tuned model yet


def test_retrieval_threshold_filters(studio: Studio, base_choice: str, corpus_file: Path) -> None:
    session = Session()
    retrieval.load_corpus(studio, text.UPLOAD_CORPUS, str(corpus_file), session)
    query = "the dog runs in the park"
    table = retrieval.search(studio, query=query, top_k=10, threshold=0.999, choice=base_choice, pooler="mean",
                             session=session)["results"]
    assert list(table["Sentence"]) == ["the dog runs in the park"]


@pytest.mark.parametrize("content, name, message", [
    (b"PK\x03\x04\x00\x00binary", "corpus.txt", "not a text file"),
    (b"a,b,c,d\nw,x,y,z\n", "corpus.csv", "4 columns"),
    (b"hello", "corpus.xlsx", "not supported"),
])
def test_bad_corpus_upload_shows_the_data_error(studio: Studio, base_choice: str, tmp_path: Path,
                                                content: bytes, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        retrieval.build_index(studio, corpus_choice=text.UPLOAD_CORPUS, upload=str(path), choice=base_choice,
                              pooler="mean", session=Session())


def test_bad_training_upload_shows_the_data_error(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"a,b,c,d\nw,x,y,z\n")
    with pytest.raises(gr.Error, match="4 columns"):
        finetune.describe_data(choice=text.UPLOAD_TRAINING, upload=str(path))


def test_finetune_streams_and_keeps_the_shared_model(studio: Studio, tuned) -> None:
    session, updates, before = tuned
    statuses = [u["status"] for u in updates if "status" in u]
    assert len(updates) >= 5  # start, step 0, one per step, packaging, final
    assert any("step 2 / 4" in s for s in statuses)
    assert statuses[-1].startswith("**Done**") and "4 steps" in statuses[-1]
    record = session.finetuned
    assert record is not None and record.run_id == 1 and session.training_idle.is_set()
    shared = studio.registry.get(studio.config.model, "cls_before_pooler")
    for name, tensor in shared.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    changed = [n for n, t in record.encoder.state_dict().items() if not torch.equal(t, before[n])]
    assert changed  # the private copy did train
    final = updates[-1]
    # the run joins the picker's choices; the model every tab uses stays the visitor's choice
    assert "value" not in final["picker"] and record.label in final["picker"]["choices"]
    assert "still use the model you picked" in final["status"] and "pooler_picker" not in final
    assert record.label.startswith("run 1 · unsup · 4 steps · STS ")


def test_finetune_downloads_load_back(studio: Studio, tuned, tmp_path: Path) -> None:
    from simcse_core.model.loading import load_encoder

    session, updates, _ = tuned
    record = session.finetuned
    with zipfile.ZipFile(record.model_zip) as archive:
        archive.extractall(tmp_path)
    folder = next(tmp_path.iterdir())
    reloaded = load_encoder(folder, device="cpu", precision="fp32")
    np.testing.assert_allclose(reloaded.encode(CORPUS[:3]), record.encoder.encode(CORPUS[:3]), atol=1e-5)
    embeddings = np.load(record.embeddings_npy)
    assert embeddings.shape == (len(CORPUS), record.encoder.dim)
    np.testing.assert_allclose(embeddings, record.encoder.encode(CORPUS), atol=1e-5)


@pytest.mark.slow
def test_kept_run_is_compact_and_its_download_keeps_the_float32_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    from simcse_core.model.loading import load_encoder

    (tmp_path / "sessions").mkdir()
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="bf16", live_eval_pairs=24,
                          temp_root=str(tmp_path / "sessions"))
    studio, session = Studio(config, ModelRegistry(config)), Session()
    list(finetune.run_finetune(studio, form=_form(config.base_label, steps=3, pooler="cls_before_pooler"),
                               session=session))
    record = session.finetuned
    assert {p.dtype for p in record.encoder.model.parameters()} == {torch.bfloat16}  # half the memory
    with zipfile.ZipFile(record.model_zip) as archive:
        archive.extractall(tmp_path / "download")
    reloaded = load_encoder(next((tmp_path / "download").iterdir()), device="cpu", precision="bf16")
    assert {p.dtype for p in reloaded.model.parameters()} == {torch.float32}  # the trained weights, not rounded
    shared = studio.registry.get(config.model, "cls_before_pooler")
    assert not torch.equal(reloaded.model.embeddings.word_embeddings.weight,
                           shared.model.embeddings.word_embeddings.weight)  # it is the trained model
    np.testing.assert_array_equal(reloaded.encode(CORPUS), record.encoder.encode(CORPUS))  # same bf16 inference


@pytest.mark.slow
def test_a_run_whose_compaction_fails_is_kept_as_trained(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from simcse_core.model.encoder import Encoder

    def broken(self, base=None) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Encoder, "compact", broken)
    (tmp_path / "sessions").mkdir()
    config = StudioConfig(model=str(tiny_model_dir), device="cpu", precision="bf16", live_eval_pairs=24,
                          temp_root=str(tmp_path / "sessions"))
    studio, session = Studio(config, ModelRegistry(config)), Session()
    with pytest.warns(UserWarning):  # the visitor is told (a toast), and the run is kept
        updates = list(finetune.run_finetune(studio, form=_form(config.base_label, steps=2, pooler="cls_before_pooler"),
                                             session=session))
    record = session.finetuned
    assert record is not None and record.model_zip and updates[-1]["model_file"] == record.model_zip
    assert next(record.encoder.model.parameters()).dtype == torch.float32
    assert record.encoder.encode(CORPUS[:2]).shape == (2, record.encoder.dim)


def test_finetune_rejects_mode_that_does_not_fit_the_data(studio: Studio, base_choice: str) -> None:
    with pytest.raises(gr.Error, match="Mode: the data are"):
        list(finetune.run_finetune(studio, form=_form(base_choice, data_choice=text.SAMPLE_SUP, steps=2, batch_size=4,
                                                      lr=1e-4, budget=30), session=Session()))


def test_retrieval_compares_base_and_finetuned(studio: Studio, base_choice: str, tuned) -> None:
    session, _, _ = tuned
    found = retrieval.search(studio, query="a cat eats fish", top_k=4, threshold=-1.0, choice=base_choice,
                             pooler="mean", session=session)
    compare, note = found["compare"], found["compare_note"]
    assert "Move" in note and "ranks" in note and session.finetuned.label in note
    assert list(compare["Rank"]) == [1, 2, 3, 4]
    base_sentences = list(compare["Base model's hit"])
    for rank, (sentence, move) in enumerate(zip(compare["Fine-tuned model's hit"], compare["Move"]), start=1):
        expected = ("new" if sentence not in base_sentences
                    else retrieval.movement(base_sentences.index(sentence) + 1, rank))
        assert move == expected


def test_movement_words() -> None:
    assert retrieval.movement(3, 1) == "↑2"
    assert retrieval.movement(1, 2) == "↓1"
    assert retrieval.movement(2, 2) == "="
    assert retrieval.movement(None, 1) == "new"


@pytest.mark.slow
def test_embedding_map_before_finetune_has_one_panel(studio: Studio, base_choice: str, corpus_file) -> None:
    session = Session()
    retrieval.load_corpus(studio, text.UPLOAD_CORPUS, str(corpus_file), session)
    drawn = embedding_map.draw_map(studio, show_moves=False, choice=base_choice, pooler="mean", session=session)
    fig, hist, stats = drawn["figure"], drawn["histogram"], drawn["stats"]
    assert "xaxis2" not in fig.layout.to_plotly_json()
    assert sum(len(t.x) for t in fig.data) == len(CORPUS)
    assert text.MAP_NO_FINETUNE in stats
    assert len(hist.data) == 1


def test_embedding_map_after_finetune_has_both_panels(studio: Studio, base_choice: str, tuned) -> None:
    session, _, _ = tuned
    drawn = embedding_map.draw_map(studio, show_moves=True, choice=base_choice, pooler="mean", session=session)
    fig, hist, stats = drawn["figure"], drawn["histogram"], drawn["stats"]
    axes = {trace.xaxis for trace in fig.data}
    assert axes == {"x", "x2"}
    points = [t for t in fig.data if t.name != "movement"]
    assert sum(len(t.x) for t in points if t.xaxis == "x") == len(CORPUS)
    assert sum(len(t.x) for t in points if t.xaxis == "x2") == len(CORPUS)
    moves = next(t for t in fig.data if t.name == "movement")
    assert len(moves.x) == 3 * len(CORPUS)
    assert len(hist.data) == 2 and "Before" in stats and "After" in stats
    assert "still weak" not in stats  # a run from a model trained for similarity


def test_embedding_map_of_a_raw_start_run_says_it_is_still_weak(studio: Studio, base_choice: str, tuned,
                                                                  monkeypatch) -> None:
    session, _, _ = tuned
    run = next(iter(session.runs.values()))
    monkeypatch.setattr(lessons, "START_MODEL", run.base_name)  # the tiny model plays the raw model
    stats = embedding_map.draw_map(studio, show_moves=False, choice=base_choice, pooler="mean",
                                   session=session)["stats"]
    assert "still weak" in stats and "weak guide to meaning" in stats and "pick the base model" in stats


def test_evaluate_returns_a_table(studio: Studio, base_choice: str, tuned) -> None:
    from simcse_core.evaluation.metrics import sts_spearman
    from simcse_core.evaluation.sets import load_demo_pairs

    session, _, _ = tuned
    shown = evaluate.evaluate(studio, set_choice=evaluate.DEMO, upload=None, choice=base_choice, pooler="mean",
                              session=session)
    table, scatter = shown["table"], shown["scatter"]
    assert list(table.columns) == evaluate.TABLE_COLUMNS
    assert len(table) == 2 and table["Model"][1].startswith("Fine-tuned")
    pairs = load_demo_pairs()
    assert table["Pairs"][0] == len(pairs)
    spearman = table["Spearman × 100 ↑"][1]  # one decimal, as on every other panel
    assert spearman == round(sts_spearman(session.finetuned.encoder, pairs), 1) == round(spearman, 1)
    assert len(scatter.data) == 2 and len(scatter.data[0].x) == min(len(pairs), evaluate.SCATTER_PAIRS)


def test_evaluate_bad_upload_warns(studio: Studio, base_choice: str, tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,score\na cat,a dog,high\n", encoding="utf-8")
    with pytest.raises(gr.Error, match="not a number"):
        evaluate.evaluate(studio, set_choice=evaluate.UPLOAD, upload=str(path), choice=base_choice, pooler="mean",
                          session=Session())



def test_offline_hub_id_warns_with_its_name_and_reverts(studio: Studio) -> None:
    from app import pick_model

    with pytest.raises(gr.Error, match="bert-base-uncased.*offline"):
        pick_model(studio, choice="bert-base-uncased", pooler="mean", session=Session())
    assert "bert-base-uncased" not in studio.config.model_choices()  # offline: not offered at all


def test_picking_the_finetuned_model_sets_its_pooler(studio: Studio, tuned) -> None:
    from app import pick_model

    session, _, _ = tuned
    shown = pick_model(studio, choice=FINETUNED_LABEL, pooler="mean", session=session)
    assert shown["pooler"] == session.finetuned.encoder.config.pooler and "fine-tuned" in shown["status"]
    shown = pick_model(studio, choice=session.finetuned.label, pooler="mean", session=session)
    assert shown["pooler"] == session.finetuned.encoder.config.pooler and session.finetuned.label in shown["status"]
    assert shown["delete"]["visible"] is True and "picker" not in shown  # the picker keeps the visitor's choice


def test_server_address_defaults_to_localhost_and_follows_flags_and_environment(monkeypatch):
    import app

    for name in ("SIMCSE_HOST", "GRADIO_SERVER_NAME", "SIMCSE_PORT", "GRADIO_SERVER_PORT", "SIMCSE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.share, args.model) == ("127.0.0.1", 7860, False, "minilm")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # what a Hugging Face Space sets
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert (app.parse_args([]).host, app.parse_args([]).port) == ("0.0.0.0", 7999)
    monkeypatch.setenv("SIMCSE_HOST", "127.0.0.2")
    assert app.parse_args([]).host == "127.0.0.2"
    args = app.parse_args(["--host", "127.0.0.3", "--port", "8001", "--share"])
    assert (args.host, args.port, args.share) == ("127.0.0.3", 8001, True)


def test_run_history_redraws_evaluation_figures_only_after_a_new_evaluation() -> None:
    from types import SimpleNamespace

    from ui.serving.runs import RunHistory

    history = RunHistory(eval_name="demo")
    history.add(SimpleNamespace(step=0, loss=None, metrics={"spearman": 70.0, "alignment": 0.1, "uniformity": -2}))
    history.add(SimpleNamespace(step=1, loss=0.5, metrics=None))
    full = finetune.figures(history)
    assert set(full) == {"loss_plot", "au_plot", "sts_plot"} and all(hasattr(f, "to_dict") for f in full.values())
    shown = finetune.figures(history, new_evaluation=False)  # the browser shows the one evaluation already
    assert set(shown) == {"loss_plot"} and shown["loss_plot"].to_dict()["data"][0]["y"] == [0.5]


# --- where the lessons start: the raw model ------------------------------------------------------------------


def test_the_picker_offers_the_raw_model_and_keeps_minilm_first() -> None:
    config = StudioConfig()
    assert config.model_choices()[:2] == [config.base_label, RAW_LABEL]
    assert config.model_name(RAW_LABEL) == lessons.START_MODEL == config.model_name(lessons.START_MODEL)
    assert config.model_name(config.base_label) == "minilm"  # Similarity, Retrieval, map and Evaluate


def test_a_fine_tune_starts_from_the_raw_model_with_the_lessons_settings(studio: Studio, base_choice: str) -> None:
    form = finetune.FinetuneForm(data_choice=text.LESSON_DATA, upload=None, mode="unsup", budget=60,
                                 picker=base_choice, **{name: getattr(lessons.LESSON_RUN, name) for name in (
                                     "steps", "batch_size", "lr", "temperature", "dropout", "pooler", "max_length")})
    assert form.start == START_RAW  # the default, also for API calls made before "Start from" existed
    job = finetune.finetune_job(studio, form, Session())
    assert job.base_name == lessons.START_MODEL and job.base_pooler == lessons.START_POOLER
    assert lessons.same_recipe(job.config)  # the settings the form does not show too (schedule, AdamW's beta2)
    assert len(job.data.examples) == len(lessons.lesson_sentences())
    picked = finetune.finetune_job(studio, _form(base_choice), Session())
    assert picked.base_name == studio.config.model_name(base_choice)


def test_the_forms_defaults_are_the_lessons_and_switch_with_the_start(studio: Studio, base_choice: str) -> None:
    from app import build_demo

    demo = build_demo(studio=studio)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert by_id["ft-start-from"].value == START_RAW and by_id["inside-start"].value == START_RAW
    assert by_id["ft-data-choice"].value == text.LESSON_DATA
    for elem_id, name in (("ft-lr", "lr"), ("ft-pooler", "pooler"), ("ft-steps", "steps"), ("ft-batch", "batch_size"),
                          ("ft-maxlen", "max_length"), ("ft-dropout", "dropout"), ("ft-temperature", "temperature")):
        assert by_id[elem_id].value == getattr(lessons.LESSON_RUN, name), elem_id
    session = Session()
    picked = finetune.start_changed(studio, start=START_PICKED, picker=base_choice, data_choice=text.LESSON_DATA,
                                    session=session)
    assert (picked["lr"], picked["pooler"], picked["steps"]) == (LIVE_RUN.lr, LIVE_RUN.pooler, LIVE_RUN.steps)
    assert picked["data_choice"] == text.SAMPLE_UNSUP and "Settings switched" in picked["start_note"]
    raw = finetune.start_changed(studio, start=START_RAW, picker=base_choice, data_choice=text.SAMPLE_UNSUP,
                                 session=session)
    run = lessons.LESSON_RUN
    assert (raw["lr"], raw["pooler"], raw["steps"]) == (run.lr, run.pooler, run.steps)
    assert text.settings_said(run) in raw["start_note"]
    assert raw["data_choice"] == text.LESSON_DATA and lessons.START_MODEL in raw["start_note"]
    assert "data_choice" not in finetune.start_changed(studio, start=START_RAW, picker=base_choice,
                                                       data_choice=text.SAMPLE_SUP, session=session)
    assert finetune.picked_changed(studio, start=START_RAW, picker=base_choice, data_choice=text.LESSON_DATA,
                                   session=session) == {}
    # The raw model picked at the top is the raw model's start: the lesson's settings.
    assert finetune.picked_changed(studio, start=START_PICKED, picker=RAW_LABEL, data_choice=text.SAMPLE_UNSUP,
                                   session=session)["lr"] == lessons.LESSON_RUN.lr


def test_changing_the_picker_is_a_valid_answer_for_every_field_of_the_fine_tune_form(studio: Studio) -> None:
    """Issue 24: picking a model while the run starts from the raw model changed nothing, and gradio read the
    handler's answer as one value for 12 outputs: a red "Error" on each field of the form."""
    import asyncio

    from app import build_demo

    demo = build_demo(studio=studio)
    (event,) = [fn for fn in demo.fns.values() if fn.name == "picked_changed"]
    values = {block.elem_id: block.value for block in event.inputs if not block.stateful}
    assert values["ft-start-from"] == START_RAW
    for start, changed in ((START_RAW, 0), (START_PICKED, len(event.outputs))):
        sent = [Session() if block.stateful else start if block.elem_id == "ft-start-from" else block.value
                for block in event.inputs]
        shown = asyncio.run(demo.postprocess_data(event, event.fn(*sent), None))
        assert len(shown) == len(event.outputs) == 12
        assert sum(value != {"__type__": "update"} for value in shown) == changed, start


def test_a_raw_start_is_scored_beside_the_paper_in_its_setting_and_the_model_trained_at_scale(
        studio: Studio, base_choice: str) -> None:
    from simcse_core.evaluation import paper

    scale = lessons.TRAINED_AT_SCALE
    form = finetune.FinetuneForm(data_choice=text.LESSON_DATA, upload=None, mode="unsup", steps=4, batch_size=8,
                                 lr=1e-3, temperature=0.05, dropout=0.1, pooler="cls", max_length=16, budget=60,
                                 picker=base_choice)
    scored = finetune.scoring(finetune.finetune_job(studio, form, Session()), "STS-B dev (300-pair sample)")
    figure = paper.TABLE6["[CLS] w/ MLP (train)"]["unsup"]
    assert [value for value, _ in scored.references] == [figure.value, scale.stsb_dev]
    assert "Table 6" in scored.references[0][1] and "trained at scale" in scored.references[1][1]
    assert "300-pair sample" in scored.note  # the chart's axis names ours too (ui.present.plots.sts_curve)
    assert f"{scale.stsb_dev:.1f}" in scored.note and "unsupervised" in scored.note
    picked = finetune.scoring(finetune.finetune_job(studio, _form(base_choice), Session()), "STS-B dev")
    assert "trained at scale" not in picked.note  # not a raw start
    assert picked.references == () and "no row of the paper matches" in picked.note  # mean: Table 6 has no row
    assert "Table 6 has rows for [CLS]" in picked.note
    sup = finetune.FinetuneForm(data_choice=text.SAMPLE_SUP, upload=None, mode="sup", steps=4, batch_size=8, lr=1e-3,
                                temperature=0.05, dropout=0.1, pooler="cls", max_length=16, budget=60,
                                picker=base_choice)
    sup_scored = finetune.scoring(finetune.finetune_job(studio, sup, Session()), "STS-B dev")
    assert sup_scored.references[0][0] == paper.TABLE7["Contradiction, α = 1.0"].value  # the sample's triplets
    assert finetune.scoring(finetune.finetune_job(studio, form, Session()), "Demo pairs") == finetune.Scoring()


def test_a_training_file_that_cannot_be_used_stays_marked(studio: Studio, tmp_path: Path) -> None:
    """The upload's validator message can be dismissed; the line under the form keeps saying the file is unusable
    (and never shows an earlier file's summary for it)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar,baz\nthe cat,a dog,a bird\n", encoding="utf-8")  # a header this reader does not know
    marked = finetune.mark_bad_file(studio, choice=text.UPLOAD_TRAINING, upload=str(bad))
    assert marked["data_info"].startswith("⚠️ **This file cannot be used:**") and "header" in marked["data_info"]
    assert finetune.mark_bad_file(studio, choice=text.SAMPLE_UNSUP, upload=None) == {}


def test_a_drawn_map_is_measured_once(studio: Studio, base_choice: str, monkeypatch) -> None:
    """The pairwise-cosine histogram of a map's 2,000 points took a fifth of the server's CPU in the soak: a map
    already drawn (by anyone, for a base model on the bundled corpus) is served from its cached drawing."""
    from simcse_core.teaching import projection

    calls = []
    real = projection.pairwise_cosine_histogram
    monkeypatch.setattr(projection, "pairwise_cosine_histogram", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = embedding_map.draw_map(studio, show_moves=False, choice=base_choice, pooler="avg_first_last",
                                   session=Session())
    again = embedding_map.draw_map(studio, show_moves=False, choice=base_choice, pooler="avg_first_last",
                                   session=Session())
    assert len(calls) == 1
    assert again["stats"] == first["stats"] and again["figure"].to_json() == first["figure"].to_json()
