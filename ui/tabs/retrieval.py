"""Retrieval tab: index a corpus (bundled or uploaded), search it, and compare base vs fine-tuned rankings."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from simcse_core.data import DataError, load_labelled_sentences
from simcse_core.teaching import lessons
from ui.present import text
from ui.present.components import SettingRadio, SettingSlider
from ui.serving import forms
from ui.serving.errors import InputError, as_markdown_text, check_choice, check_number, check_sentence, guarded, shorten
from ui.serving.session import Corpus, Session
from ui.serving.studio import Studio, comparison_for

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ["Rank", "Score", "Sentence", "Topic"]
COMPARE_COLUMNS = ["Rank", "Base score", "Base model's hit", "Fine-tuned score", "Fine-tuned model's hit",
                   "Move"]
MAX_TOP_K = 20
QUERY_EXAMPLES = [
    ["How do vaccines protect people?"],
    ["A player scored in the last minute of the match."],
    ["What happens when interest rates go up?"],
]


def load_corpus(studio: Studio, choice: str, upload: str | None, session: Session) -> Corpus:
    """Make the corpus the visitor chose the session's corpus (DataError on a bad upload)."""
    choice = check_choice(choice, "Corpus", (text.BUNDLED_CORPUS, text.UPLOAD_CORPUS))
    if choice != text.UPLOAD_CORPUS:
        return session.set_corpus(studio.bundled_corpus())
    if not upload:
        raise InputError("Corpus file: choose a file to upload first (.txt with one sentence per line, or "
                         ".csv/.tsv/.jsonl with a 'text' column and optionally a 'topic' column).")
    path = Path(upload)
    sentences, topics = load_labelled_sentences(path, studio.config.upload_limits)
    if len(sentences) < 2:
        raise InputError(f"Corpus file: {shorten(path.name)} has only {len(sentences)} distinct sentence; a "
                         "corpus needs at least 2.")
    corpus = Corpus(f"{shorten(path.name)} ({len(sentences):,} sentences)", sentences, topics,
                    key=session.new_corpus_key())
    return session.set_corpus(corpus)


@guarded
def build_index(studio: Studio, corpus_choice: str, upload: str | None, choice: str, pooler: str,
                session: Session, progress=gr.Progress()) -> dict[str, Any]:
    """Handler: read the chosen corpus and build its index for the picked model."""
    corpus = load_corpus(studio, corpus_choice, upload, session)
    encoder = studio.encoder_for(choice, pooler, session)
    start = time.perf_counter()
    index = studio.get_index(session, encoder, studio.model_key(choice, pooler, session), progress)
    seconds = time.perf_counter() - start
    status = (f"**Index ready** — {as_markdown_text(corpus.name)}, model `{text.model_shown(choice, encoder)}`, "
              f"search backend `{index.backend}` ({seconds:.1f} s). Type a query below.")
    return {"status": status, "session": session}


def choose_corpus(studio: Studio, corpus_choice: str, upload: str | None, session: Session) -> dict:
    """Handler for the Corpus choice: it takes effect at once (searches use it; indexing waits for a search)."""
    show_upload = gr.update(visible=corpus_choice == text.UPLOAD_CORPUS)
    if corpus_choice == text.UPLOAD_CORPUS and not upload:
        current = studio.corpus_of(session).name
        return {"upload": show_upload, "session": session,
                "status": f"Upload a corpus file: searches use it as soon as it is read. Until then they search "
                          f"**{current}**."}
    try:
        corpus = load_corpus(studio, corpus_choice, upload, session)
    except (InputError, DataError) as err:
        gr.Warning(str(err))
        return {"upload": show_upload, "session": session,
                "status": f"⚠️ {err} Searches still use **{as_markdown_text(studio.corpus_of(session).name)}**."}
    return {"upload": show_upload, "session": session,
            "status": f"Searches now use **{as_markdown_text(corpus.name)}** (indexed on the first search, or press "
                      "Build index)."}


def hits_table(hits, corpus: Corpus) -> pd.DataFrame:
    """Rank, score, sentence and topic of each hit."""
    rows = [[rank, round(hit.score, 3), hit.sentence, corpus.topics[hit.corpus_id] if corpus.topics else "—"]
            for rank, hit in enumerate(hits, start=1)]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def movement(base_rank: int | None, new_rank: int) -> str:
    """How a hit moved from the base ranking to the fine-tuned one: ↑2, ↓1, = or new."""
    if base_rank is None:
        return "new"
    if base_rank == new_rank:
        return "="
    return f"↑{base_rank - new_rank}" if base_rank > new_rank else f"↓{new_rank - base_rank}"


def compare_table(base_hits, tuned_hits) -> pd.DataFrame:
    """Base and fine-tuned hits side by side, with each fine-tuned hit's rank movement."""
    base_rank = {hit.corpus_id: rank for rank, hit in enumerate(base_hits, start=1)}
    rows = []
    for rank in range(1, max(len(base_hits), len(tuned_hits)) + 1):
        base = base_hits[rank - 1] if rank <= len(base_hits) else None
        tuned = tuned_hits[rank - 1] if rank <= len(tuned_hits) else None
        rows.append([
            rank,
            round(base.score, 3) if base else None, base.sentence if base else "",
            round(tuned.score, 3) if tuned else None, tuned.sentence if tuned else "",
            movement(base_rank.get(tuned.corpus_id), rank) if tuned else "",
        ])
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


@guarded
def search(studio: Studio, query: str, top_k: float, threshold: float, choice: str, pooler: str,
           session: Session, progress=gr.Progress()) -> dict[str, Any]:
    """Handler: the top-k corpus sentences for a query; and base vs fine-tuned when a fine-tune exists (the
    results table, the comparison table and its note, the status line)."""
    query = check_sentence(query, "query", studio.config.max_sentence_chars)
    top_k = int(check_number(top_k, "Top-k", 1, MAX_TOP_K, whole=True))
    threshold = check_number(-1.0 if threshold is None else threshold, "Minimum score", -1.0, 1.0)
    threshold = threshold if threshold > -1 else None
    encoder = studio.encoder_for(choice, pooler, session)
    corpus, index = studio.searchable(session, encoder, studio.model_key(choice, pooler, session), progress)
    hits = index.search(query, top_k=top_k, threshold=threshold)[0]
    if not hits:
        gr.Info(f"No sentence scores above the threshold {threshold:.2f}. Lower the threshold to see more.")
    status = (f"Searched **{as_markdown_text(corpus.name)}** with `{text.model_shown(choice, encoder)}` "
              f"(backend `{index.backend}`); {len(hits)} hit{'s' if len(hits) != 1 else ''}.")
    compare, note = pd.DataFrame(columns=COMPARE_COLUMNS), text.COMPARE_HINT
    pair = comparison_for(studio, choice, session)
    if pair is not None:
        run = pair.run
        base_corpus, base_index = studio.searchable(session, pair.base, run.base_key, progress)
        tuned_corpus, tuned_index = studio.searchable(session, run.encoder, run.model_key, progress)
        if base_corpus.key == tuned_corpus.key:
            compare = compare_table(base_index.search(query, top_k=top_k, threshold=threshold)[0],
                                    tuned_index.search(query, top_k=top_k, threshold=threshold)[0])
            note = compare_note(pair, pooler, top_k)
    return {"results": hits_table(hits, corpus), "compare": compare, "status": status, "compare_note": note,
            "session": session}


def compare_note(pair, picked_pooler: str, k: int) -> str:
    """What the comparison table shows, both sides named, and what can be compared across them."""
    note = (f"**Base vs fine-tuned.** Left: {pair.base_label}. Right: {pair.run.label} "
            f"[{pair.run.encoder.config.pooler}]. *Move* is how each fine-tuned hit's rank changed: ↑ up, "
            f"↓ down, = same, *new* = not in the base model's top {k}. Compare **ranks**, not scores: each "
            "model has its own range of cosines (a crowded model scores everything high), so a higher raw "
            "score on one side does not mean a better match.")
    if picked_pooler and picked_pooler != pair.run.base_pooler:
        note += (f" The base side uses the pooler the run started from (`{pair.run.base_pooler}`), not the "
                 f"picker's (`{picked_pooler}`), so that only the training differs.")
    if pair.run.base_name == lessons.START_MODEL:
        note += "\n\n" + text.raw_start_search_note(pair.run)
    return note


def build(studio: Studio, picker: gr.Dropdown, pooler: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.RETRIEVAL_INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            corpus_choice = SettingRadio([text.BUNDLED_CORPUS, text.UPLOAD_CORPUS], value=text.BUNDLED_CORPUS,
                                     label="Corpus", elem_id="ret-corpus-choice")
            upload = gr.File(label="Your corpus: .txt (one sentence per line) or .csv/.tsv/.jsonl with a "
                                   "'text' column (optional 'topic')", elem_id="ret-upload", visible=False)
            build_btn = gr.Button("Build index", variant="secondary", elem_id="ret-build")
            status = gr.Markdown("The bundled corpus is indexed automatically on the first search.",
                                 elem_id="ret-status")
        with gr.Column(scale=2):
            query = gr.Textbox(label="Query", value=QUERY_EXAMPLES[0][0], elem_id="ret-query", max_lines=2,
                               info=text.length_limit(studio.config.max_sentence_chars))
            with gr.Row():
                top_k = SettingSlider(1, MAX_TOP_K, value=5, step=1, label="Top-k", elem_id="ret-topk",
                                  info="How many sentences to return.")
                threshold = SettingSlider(-1.0, 1.0, value=-1.0, step=0.05, label="Minimum score",
                                      elem_id="ret-threshold",
                                      info="Hide hits with a lower cosine (−1 shows everything).")
            search_btn = gr.Button("Search", variant="primary", elem_id="ret-search")
            examples = gr.Examples(QUERY_EXAMPLES, inputs=[query], label="Try a query (one click)",
                                   cache_examples=False)
    results = gr.Dataframe(pd.DataFrame(columns=RESULT_COLUMNS), label="Results (picked model)",
                           elem_id="ret-results", interactive=False, wrap=True,
                           column_widths=["8%", "10%", "62%", "20%"])
    compare_note = gr.Markdown(text.COMPARE_WHEN_RUN)
    compare = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), label="Base vs fine-tuned",
                           elem_id="ret-compare", interactive=False, wrap=True,
                           column_widths=["7%", "10%", "33%", "10%", "32%", "8%"])

    corpus_choice.change(**forms.wire(functools.partial(choose_corpus, studio),
                                      {"corpus_choice": corpus_choice, "upload": upload, "session": session},
                                      {"upload": upload, "status": status, "session": session}),
                         api_visibility="private", **studio.queues.encode)
    # The endpoints' parameters and outputs, in these orders (the session is not a parameter: gradio keeps it).
    indexed = forms.wire(functools.partial(build_index, studio),
                         {"corpus_choice": corpus_choice, "upload": upload, "choice": picker, "pooler": pooler,
                          "session": session}, {"status": status, "session": session})
    build_btn.click(**indexed, api_name="build_index", **studio.queues.heavy)
    upload.upload(**indexed, api_visibility="undocumented", **studio.queues.heavy)
    found = forms.wire(functools.partial(search, studio),
                       {"query": query, "top_k": top_k, "threshold": threshold, "choice": picker, "pooler": pooler,
                        "session": session},
                       {"results": results, "compare": compare, "status": status, "compare_note": compare_note,
                        "session": session})
    search_btn.click(**found, api_name="search", **studio.queues.encode)
    query.submit(**found, api_visibility="undocumented", **studio.queues.encode)
    examples.load_input_event.then(**found, api_visibility="undocumented", **studio.queues.encode)
