"""Similarity tab: the cosine of two sentences with a plain-language reading, and a heatmap of a list."""

from __future__ import annotations

import functools
import logging

import gradio as gr
import plotly.graph_objects as go

from simcse_core.data import DataLimits, sentences_from_text
from ui.present import plots, text
from ui.serving import forms
from ui.serving.errors import InputError, check_sentence, clean_text, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio

logger = logging.getLogger(__name__)

PAIR_EXAMPLES = [
    ["A man is playing a guitar.", "Someone is playing an acoustic guitar."],
    ["The stock market fell sharply today.", "Share prices dropped a lot this afternoon."],
    ["A child is reading a book.", "The chef is cooking pasta in the kitchen."],
]
# Hard cases, most from the bundled demo pairs (assets/demo_sts_pairs.csv, human scores 0-5): pairs that share
# a topic and most words but not the meaning. Cosine scores them high; that is what it measures.
HARD_EXAMPLES = [
    ("The movie was fantastic.", "The movie was terrible.", "Opposites"),
    ("The cat is on the mat.", "The cat is not on the mat.", "Negation: the cat (human score 2.0 of 5)"),
    ("I like coffee.", "I do not like coffee.", "Negation: coffee (human score 2.0 of 5)"),
    ("The dog bit the man.", "The man bit the dog.", "Swapped roles (human score 2.2 of 5)"),
    ("The rocket launch was a success.", "The rocket launch was a failure.", "Antonyms (human score 2.2 of 5)"),
    ("🐶", "🍕", "Symbols the model cannot read"),
]
LIST_EXAMPLES = [
    "\n".join([
        "A man is playing a guitar.", "Someone is strumming a guitar on stage.", "A woman plays the piano.",
        "The stock market fell sharply today.", "Share prices dropped in the afternoon.",
        "The central bank raised interest rates.", "A dog is running in the park.",
        "A puppy chases a ball on the grass.",
    ]),
    "\n".join([
        "How do I reset my password?", "I forgot my login details.", "Where can I change my account email?",
        "What time does the store open?", "Is the shop open on Sundays?", "The weather is lovely today.",
    ]),
]


def calibrate(score: float, baseline: float | None) -> float:
    """Rescale a cosine so that the model's "unrelated" level maps to 0 and identical stays 1."""
    if baseline is None or not baseline < 0.95:
        return score
    return (score - baseline) / (1.0 - baseline)


def reading(score: float, baseline: float | None = None) -> str:
    """Plain words for a cosine, read against the model's baseline (see :func:`calibrate`)."""
    level = calibrate(score, baseline)
    return next(words for bound, words in text.SCORE_BANDS if level >= bound)


def _quote(parts: tuple[str, ...]) -> str:
    return ", ".join(f"“{p}”" for p in parts[:6]) + (" …" if len(parts) > 6 else "")


def reading_warnings(reports: dict[str, object]) -> list[str]:
    """Plain-words warnings about what the model could not read, one per problem (``reports``: name -> report)."""
    notes = []
    unreadable = [name for name, r in reports.items() if r.mostly_unknown]
    if len(unreadable) == len(reports) > 1:
        shown = " and ".join(_quote(r.unknown_text) for r in reports.values())
        notes.append(text.BOTH_UNKNOWN.format(shown=shown))
    elif unreadable:
        for name in unreadable:
            notes.append(text.ONE_UNKNOWN.format(name=name, shown=_quote(reports[name].unknown_text)))
    for name, r in reports.items():
        if r.unknown and not r.mostly_unknown:
            verb = "is" if len(r.unknown_text) == 1 else "are"
            notes.append(text.SOME_UNKNOWN.format(name=name, shown=_quote(r.unknown_text), verb=verb))
        if r.truncated:
            notes.append(text.TRUNCATED.format(name=name, kept=r.kept, tokens=r.tokens, cut=plots.short(
                r.truncated_text, 60)))
    return notes


def format_score(score: float, baseline: float | None, model: str, reports: dict[str, object] | None = None) -> str:
    """The markdown shown in ``#sim-score``: the number, its reading (or why there is none), and notes."""
    reports = reports or {}
    note = text.SCORE_NOTE.format(baseline=baseline) if baseline is not None else text.SCORE_NOTE_NO_BASELINE
    if any(r.mostly_unknown for r in reports.values()):
        verdict = text.NO_VERDICT
    else:
        verdict = reading(score, baseline)
    warnings = "".join(f"\n\n⚠️ {w}" for w in reading_warnings(reports))
    return (f"## {score:.2f} — {verdict}{warnings}\n\n<small>Model: {model}. {text.WHAT_COSINE_MEASURES} "
            f"{note}</small>")


@guarded
def score_pair(studio: Studio, a: str, b: str, choice: str, pooler: str, session: Session) -> dict[str, str]:
    """Handler: cosine of two sentences, with its reading and what the model could not read."""
    limit = studio.config.max_sentence_chars
    a = check_sentence(a, "first sentence", limit)
    b = check_sentence(b, "second sentence", limit)
    encoder = studio.encoder_for(choice, pooler, session)
    score = float(encoder.similarity([a], [b])[0, 0])
    reports = dict(zip(("Sentence A", "Sentence B"), encoder.token_report([a, b])))
    baseline = studio.baseline(studio.model_key(choice, pooler, session), encoder)
    return {"score": format_score(score, baseline, text.model_shown(choice, encoder), reports)}


def pair_problems(studio: Studio, a: str, b: str, **_) -> dict[str, str]:
    """Validator of the pair: each wrong sentence with its message (the model and session are not checked)."""
    problems = {}
    for name, value, what in (("a", a, "first sentence"), ("b", b, "second sentence")):
        try:
            check_sentence(value, what, studio.config.max_sentence_chars)
        except InputError as err:
            problems[name] = str(err)
    return problems


@guarded
def heatmap(studio: Studio, lines: str, choice: str, pooler: str, session: Session) -> dict[str, go.Figure]:
    """Handler: the cosine matrix of a list of sentences (one per line) as an interactive heatmap."""
    config = studio.config
    limits = DataLimits(max_rows=config.max_heatmap_sentences, max_chars=config.max_sentence_chars)
    if lines is not None and not isinstance(lines, str):
        raise InputError("The list must be text, one sentence per line.")
    if len(lines or "") > config.max_list_chars:
        raise InputError(f"The list has {len(lines):,} characters; the limit is {config.max_list_chars:,}. "
                         "Remove some lines.")
    lines = clean_text(lines or "")
    if not lines.strip():
        raise InputError("The list is empty. Type two or more sentences, one per line.")
    count = sum(1 for line in lines.split("\n") if line.strip())
    if count > limits.max_rows:
        raise InputError(f"The list has {count} sentences; the heatmap shows at most {limits.max_rows}. "
                         "Remove some lines.")
    sentences = sentences_from_text(lines, limits)
    if len(sentences) < 2:
        raise InputError("The heatmap needs at least two different sentences, one per line.")
    encoder = studio.encoder_for(choice, pooler, session)
    matrix = encoder.similarity(sentences, sentences)  # (N, N)
    reports = encoder.token_report(sentences)
    notes = reading_warnings({f"Line {k + 1}": r for k, r in enumerate(reports)})
    if notes:
        gr.Warning(" ".join(notes[:4]) + (" …" if len(notes) > 4 else ""))
    title = f"Cosine similarity — {text.model_shown(choice, encoder)}"
    return {"figure": plots.similarity_heatmap(sentences, matrix, title=title,
                                               unreadable=[r.mostly_unknown for r in reports])}


def build(studio: Studio, picker: gr.Dropdown, pooler: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.SIMILARITY_INTRO)
    with gr.Row():
        limit = text.length_limit(studio.config.max_sentence_chars)
        a = gr.Textbox(label="Sentence A", value=PAIR_EXAMPLES[0][0], elem_id="sim-a", max_lines=3, info=limit)
        b = gr.Textbox(label="Sentence B", value=PAIR_EXAMPLES[0][1], elem_id="sim-b", max_lines=3, info=limit)
    with gr.Row():
        with gr.Column(scale=1, min_width=160):
            run = gr.Button("Compare", variant="primary", elem_id="sim-run")
        with gr.Column(scale=5):
            score = gr.Markdown("*Press **Compare** to see how similar the two sentences are.*",
                                elem_id="sim-score", container=True, padding=True)
    examples = gr.Examples(PAIR_EXAMPLES, inputs=[a, b], label="Try a pair (one click)",
                           cache_examples=False)
    hard = gr.Examples([[x, y] for x, y, _ in HARD_EXAMPLES], inputs=[a, b], cache_examples=False,
                       example_labels=[label for _, _, label in HARD_EXAMPLES],
                       label="Hard cases: opposites, negation, swapped roles, unknown symbols (one click)")
    # The /similarity endpoint's parameters, in this order (the session is not one: gradio keeps it).
    pair_inputs = {"a": a, "b": b, "choice": picker, "pooler": pooler, "session": session}
    pair = forms.wire(functools.partial(score_pair, studio), pair_inputs, {"score": score})
    # A sentence that is empty or too long is marked on its own box; the last score stays on screen.
    check = forms.validator(functools.partial(pair_problems, studio), pair_inputs)
    run.click(**pair, api_name="similarity", validator=check, **studio.queues.encode)
    a.submit(**pair, api_visibility="undocumented", validator=check, **studio.queues.encode)
    b.submit(**pair, api_visibility="undocumented", validator=check, **studio.queues.encode)
    examples.load_input_event.then(**pair, api_visibility="undocumented", **studio.queues.encode)
    hard.load_input_event.then(**pair, api_visibility="undocumented", **studio.queues.encode)

    gr.Markdown("### Compare a whole list")
    with gr.Row():
        with gr.Column(scale=2):
            lines = gr.Textbox(label=f"Sentences, one per line (up to {studio.config.max_heatmap_sentences})",
                               value=LIST_EXAMPLES[0], lines=10, max_lines=20, elem_id="sim-list",
                               info=text.length_limit(studio.config.max_sentence_chars, "Each line"))
            run_map = gr.Button("Draw heatmap", variant="primary", elem_id="sim-heatmap-run")
            list_examples = gr.Examples([[x] for x in LIST_EXAMPLES], inputs=[lines],
                                        label="Try a list (one click)", cache_examples=False,
                                        example_labels=["Music, markets and dogs", "Customer questions"])
        with gr.Column(scale=3):
            figure = gr.Plot(plots.placeholder("Press “Draw heatmap” to compare every pair."),
                             elem_id="sim-heatmap", show_label=False)
    drawn = forms.wire(functools.partial(heatmap, studio),
                       {"lines": lines, "choice": picker, "pooler": pooler, "session": session}, {"figure": figure})
    run_map.click(**drawn, api_name="heatmap", **studio.queues.encode)
    list_examples.load_input_event.then(**drawn, api_visibility="undocumented", **studio.queues.encode)
