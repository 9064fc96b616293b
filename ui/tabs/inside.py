"""Inside SimCSE tab: the paper's mechanisms on the real model, one click each.

Panels (inner tabs): dropout twins, inside the loss, ablations in miniature, the cone view, the glossary and
exports. Every number comes from ``simcse_core`` (mechanisms, ablations, projection, metrics, export); the
handlers validate, call the core and format. The visitor's panel data (the loss panel's vectors, preset runs,
the latest preset model) live in their :class:`ui.serving.session.Session`, with the rest of their data; a preset run
is a :class:`ui.serving.runs.PresetJob` of the run lifecycle the Fine-tune tab uses too.
"""

from __future__ import annotations

import functools
import logging
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from simcse_core.evaluation import paper
from simcse_core.limits import LIMITS
from simcse_core.paths import ASSETS_DIR
from simcse_core.teaching import ablations, lessons
from simcse_core.training.config import setting_spec
from ui.present import browser, glossary, plots
from ui.present.components import OptionalRadio
from ui.present.text import SCALE_NAME, model_shown, trained_at_scale
from ui.serving import forms, runs
from ui.serving.config import START_CHOICES, START_RAW
from ui.serving.errors import InputError, check_choice, check_lines, check_number, guarded, report_error
from ui.serving.server import client_address
from ui.serving.session import Session
from ui.serving.studio import Studio, check_start

logger = logging.getLogger(__name__)

ASSETS = ASSETS_DIR
TWIN_SENTENCES = "A man is playing a guitar on the stage.\nThe stock market fell sharply today.\n" \
                 "My grandmother bakes fresh bread every Sunday morning."
LOSS_SENTENCES = "\n".join([
    "A man is playing a guitar.", "Someone is playing an acoustic guitar.", "The stock market fell sharply today.",
    "A dog is running in the park.", "My grandmother bakes bread every Sunday.", "The rocket launched at dawn.",
    "I forgot my password again.", "It will rain all weekend.",
])
DRIFT_RATES = tuple(round(0.1 * k, 1) for k in range(6))  # 0, 0.1, ..., 0.5
CONE_PER_TOPIC = 4  # arrows per topic (12 topics: 48 arrows)
CONE_STATS_PER_TOPIC = 20  # sentences per topic for the basis and the anisotropy figures
MODES = [("Unsupervised: each sentence and its dropout twin", "unsup"),
         ("Supervised: anchor | positive | hard negative", "sup")]
PRESET_CHOICES = [(f"{p.paper_source} · {p.label}", p.key) for p in ablations.PRESETS]
PAPER_NOTE = ("Paper figures: STS-B development set, BERT-base trained for one epoch on 10⁶ Wikipedia sentences "
              f"(unsupervised) or three on SNLI+MNLI, {paper.NLI_PAIRS} pairs in the paper's count (supervised; the "
              "official training file has 275k triplets).")
START_NOTE = (f"Ours: every preset trains a private copy of `{ablations.START_MODEL}`, whatever model is picked at "
              "the top, and scores it through its row's pooler from the start (the setting column names it; the "
              "plane labels each start point).")


def _range(name: str) -> tuple[float, float]:
    """A slider's range: the core's allowed values of the training setting ``name``."""
    spec = setting_spec(name)
    return spec.low, spec.high


def _lines(text: str, what: str, low: int, high: int, parts: int = 1) -> list[str]:
    return check_lines(text, what, low, high, parts=parts)  # bounded by simcse_core.limits.LIMITS


def _setting(value: object, name: str, field: str) -> float:
    """``value`` checked against the core's range of the training setting ``name`` (InputError naming ``field``)."""
    return check_number(value, field, *_range(name))


# --- where the panels start ---

def describe_start(start: str | None, choice: str | None, pooler: str | None) -> str:
    """The line under "Start from": which model the twins and the loss use, and that presets use the raw model."""
    presets = (f"Ablation presets always start from `{ablations.START_MODEL}`, as the paper's start from BERT-base; "
               "the cone draws a trained model against the model it started from.")
    if check_start(start) == START_RAW:
        return (f"The twins and the loss use **`{lessons.START_MODEL}`** through `{lessons.START_POOLER}` (the "
                f"lesson's pooler): a language model never trained on sentence pairs, where SimCSE starts. To look "
                f"at another model, choose “{START_CHOICES[1][0]}”. {presets}")
    return (f"**You switched**: the twins and the loss now use the model picked at the top (**{choice}**, "
            f"`{pooler}` pooler), not `{lessons.START_MODEL}`. {presets}")


def _start_shown(start: str | None, choice: str, encoder) -> str:
    return encoder.description if check_start(start) == START_RAW else model_shown(choice, encoder)


# --- dropout twins ---

@guarded
def show_twins(studio: Studio, text: str, dropout: float, choice: str, pooler: str, session: Session,
               start: str = START_RAW) -> dict[str, Any]:
    """Handler: each sentence twice in training mode at ``dropout``, and the drift curve over 0-0.5.

    ``start``: "raw" (the raw model the lessons start from, the default) or "picked" (``choice`` and ``pooler``).
    """
    from simcse_core.teaching.mechanisms import dropout_twins, twin_drift

    sentences = _lines(text, "Sentences", 1, LIMITS.twin_sentences)
    dropout = _setting(dropout, "dropout", "Dropout rate")
    encoder = studio.start_encoder(start, choice, pooler, session)
    twins = dropout_twins(encoder, sentences, dropout=float(dropout))
    drift = twin_drift(encoder, sentences, DRIFT_RATES)
    figure = plots.dropout_twins_figure(twins.sentences, twins.twin_cosines, twins.nearest_other, DRIFT_RATES,
                                        drift, twins.dropout)
    same = "identical, bit for bit" if twins.eval_identical else f"cosine {min(twins.eval_cosines):.6f}"
    nearest = ""
    if twins.nearest_other is not None:
        nearest = (f" The closest *other* sentence is much further away (mean cosine "
                   f"{np.mean(twins.nearest_other):.2f}), so a twin is easy to find: that is what the loss asks.")
    summary = (f"### Dropout {twins.dropout:.2f}: twin cosine {twins.mean_twin_cosine:.4f} on average\n"
               f"In **training mode** each pass switches off different random units, so the two vectors of "
               f"one sentence differ (cosine below 1). In **evaluation mode** the two passes are {same}.{nearest}"
               f"\n\n**This small difference is the whole \"data augmentation\" of unsupervised SimCSE.** "
               f"Model: `{_start_shown(start, choice, encoder)}`.")
    return {"twin_summary": summary, "twin_plot": figure}


# --- inside the loss ---

def parse_batch(text: str, mode: str) -> list:
    """The loss panel's batch: sentences (unsup) or ``anchor | positive | hard negative`` rows (sup)."""
    from simcse_core.teaching.mechanisms import MAX_BATCH, MIN_BATCH

    mode = check_choice(mode, "Batch mode", [value for _, value in MODES])
    lines = _lines(text, "Batch", MIN_BATCH, MAX_BATCH, parts=1 if mode == "unsup" else LIMITS.row_parts)
    if mode == "unsup":
        return lines
    rows = [tuple(part.strip() for part in line.split("|")) for line in lines]
    for k, row in enumerate(rows, start=1):
        if len(row) not in (2, 3) or not all(row):
            raise InputError(f"Batch line {k} must be “anchor | positive” or “anchor | positive | hard negative”.")
    return rows


def sample_triplets(n: int = 8) -> str:
    """The first ``n`` triplets of the bundled supervised sample, one ``a | b | c`` per line."""
    from simcse_core.data import load_triplets

    return "\n".join(" | ".join(t) for t in load_triplets(ASSETS / "sample_sup.csv")[:n])


def loss_outputs(session: Session, temperature: float, alpha: float) -> dict[str, Any]:
    """The loss panel's summary and figure for the session's encoded batch at ``temperature`` and ``alpha``."""
    from simcse_core.teaching.mechanisms import anatomy_of
    from simcse_core.training.losses import simcse_loss

    views = session.loss_views
    if views is None:
        raise InputError("Press “Encode the batch” first.")
    temperature = _setting(temperature, "temperature", "Temperature τ")
    alpha = _setting(alpha, "hard_negative_weight", "α (hard negatives)")
    anatomy = anatomy_of(views, float(temperature), float(alpha))
    check = float(simcse_loss(views.z1, views.z2, views.hard, float(temperature), float(alpha)))
    figure = plots.loss_anatomy_figure(views.anchors, views.candidates, anatomy.cosines, anatomy.probabilities,
                                       anatomy.row_losses, anatomy.chance, anatomy.temperature,
                                       len(views.positives))
    hard = (" Columns −1… are the hard negatives (contradictions), weighted by α."
            if views.hard is not None else "")
    summary = (f"### Batch loss {anatomy.loss:.4f} · chance level ln({anatomy.cosines.shape[1]}) = "
               f"{anatomy.chance:.2f}\n"
               f"Each row is one anchor; column +i is anchor i's positive (green box: "
               f"{'its dropout twin' if views.mode == 'unsup' else 'its entailed partner'}), encoded in training "
               f"mode at dropout {views.dropout:.2f} (the rate set under Dropout twins).{hard} "
               f"The softmax turns a row of cosines ÷ τ into chances; the row's loss is −log of the chance on the "
               f"green box. {int(anatomy.correct.sum())} of {len(anatomy.correct)} anchors put the most chance "
               f"on their own positive. The batch loss is the mean of the row losses; `simcse_loss` on the same "
               f"vectors gives **{check:.4f}**. Move τ: small τ sharpens every row, τ = 1 flattens it towards "
               f"the chance level.")
    return {"loss_summary": summary, "loss_plot": figure}


@dataclass(frozen=True)
class LossForm:
    """Encode the batch's inputs by name, in the order of the ``/inside_the_loss`` endpoint's parameters."""

    text: str  # the batch: one sentence (unsup) or one "anchor | positive | hard negative" row (sup) per line
    mode: str  # "unsup" or "sup" (MODES)
    dropout: float  # the rate set under Dropout twins
    temperature: float
    alpha: float  # the hard negatives' weight
    choice: str  # the model picked at the top, and its pooler: used when ``start`` is "picked"
    pooler: str
    start: str = START_RAW  # as in show_twins


@guarded
def encode_batch(studio: Studio, session: Session, **form) -> dict[str, Any]:
    """Handler: encode the batch's two views in training mode and show the loss's insides (``form``: the fields
    of :class:`LossForm`)."""
    from simcse_core.teaching.mechanisms import dropout_views

    form = LossForm(**form)
    batch = parse_batch(form.text, form.mode)
    dropout = _setting(form.dropout, "dropout", "Dropout rate")
    encoder = studio.start_encoder(form.start, form.choice, form.pooler, session)
    session.set_loss_views(dropout_views(encoder, batch, dropout=float(dropout)))
    return {**loss_outputs(session, form.temperature, form.alpha), "session": session}


@guarded
def rescore(temperature: float, alpha: float, session: Session) -> dict:
    """Handler for the τ and α sliders: the same vectors, a new softmax (no encoding). Before the batch is
    encoded there is nothing to rescore: the summary says what to press, and nothing else changes."""
    if session.loss_views is None:
        temperature = _setting(temperature, "temperature", "Temperature τ")
        alpha = _setting(alpha, "hard_negative_weight", "α (hard negatives)")
        return {"loss_summary": f"τ = {temperature:g}, α = {alpha:g} will be used: press **Encode the batch** to "
                                "see the loss at these settings."}
    return loss_outputs(session, temperature, alpha)


def example_batch(mode: str) -> str:
    return LOSS_SENTENCES if mode == "unsup" else sample_triplets()


def text_of_new_batch(mode: str) -> str:
    """The loss panel's note when the batch kind changes: the figure below is still the old batch's."""
    kind = "sentences and their dropout twins" if mode == "unsup" else "anchor | positive | hard negative rows"
    return (f"The batch is now **{kind}**. Press **Encode the batch** to draw it; the figure below still shows "
            "the batch encoded before.")


def new_batch(mode: str) -> dict[str, str]:
    """Handler for the batch kind: its example batch, and the note that the figure is still the old batch's."""
    return {"batch": example_batch(mode), "loss_summary": text_of_new_batch(mode)}


# --- ablations ---

SCALE_COLUMN = f"Trained at scale ({SCALE_NAME}, full dev)"
TABLE_COLUMNS = ("Table", "Row", "Setting: paper · ours", "Paper STS-B dev", "Ours: start → end",
                 "Row against its table's default: paper · ours", "Steps", SCALE_COLUMN)
VERDICT_WORDS = {"agrees": "✓ agrees", "differs": "✗ differs", "unclear": "· too small to tell"}


def _flags(preset) -> str:
    """" ⚠ another setting, another pooler" where our run is not in the paper row's setting or pooler."""
    flags = [word for word, differs in (("another setting", not preset.same_setting),
                                        ("another pooler", not preset.same_pooler)) if differs]
    return f" ⚠ {', '.join(flags)}" if flags else ""


def paper_said(preset) -> str:
    """The paper's row for ``preset``, named with its table, row and setting, and the paper's figure in our setting
    and pooler where it gives one (every figure read from :mod:`simcse_core.evaluation.paper`)."""
    figure = preset.paper
    said = f"{figure.table} “{figure.row}” ({ablations.paper_setting(preset)}): {figure.value:.1f}"
    other = preset.counterpart
    if other is not None:
        said += (f"; in our setting and pooler ({ablations.SETTING_WORDS[other.setting]}, {other.pooler}): "
                 f"{other.value:.1f}, {other.table} “{other.row}”")
    return said


def differences_said(preset) -> str:
    """" ⚠ Another setting: …; another pooler: …." (empty when our run matches the paper row's)."""
    said = "; ".join(ablations.differences(preset))
    return f" ⚠ {said[:1].upper()}{said[1:]}." if said else ""


def _paper_cell(preset) -> str:
    figure, other = preset.paper, preset.counterpart
    cell = f"{figure.value:.1f} (“{figure.row}”)"
    if other is not None:
        cell += f"; unsupervised, our pooler: {other.value:.1f} ({other.table} “{other.row}”)"
    return cell


def _against_default(preset, result, comparison) -> str:
    if result is None:
        return ""
    if preset.key == ablations.DEFAULT_IN_GROUP[preset.group]:
        return "the table's default"
    if comparison is None:
        return "run the table's default to compare"
    return (f"paper {ablations.points_said(comparison.paper_diff)}, ours "
            f"{ablations.points_said(comparison.ours_diff)}: {VERDICT_WORDS[comparison.verdict]} "
            f"({comparison.how})")


def paper_table(results: list) -> pd.DataFrame:
    """Every preset with the paper's row, its setting beside ours, and our run where this visitor ran it; each row
    set against its table's default in the paper and in ours."""
    ours = {r.key: r for r in results}
    compared = {c.row: c for c in ablations.comparisons(results)}
    rows = []
    for preset in ablations.PRESETS:
        result = ours.get(preset.key)
        rows.append(dict(zip(TABLE_COLUMNS, (
            preset.paper.table, preset.label,
            f"paper: {ablations.paper_setting(preset)} · ours: {ablations.our_setting(preset)}{_flags(preset)}",
            _paper_cell(preset),
            "" if result is None else f"{result.before['spearman']:.1f} → {result.after['spearman']:.1f}",
            _against_default(preset, result, compared.get(preset.label)),
            "" if result is None else result.steps,
            "" if result is None else f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}",
        ), strict=True)))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def scored_vector_said(config) -> str:
    """The vector a run of ``config`` is scored (and drawn) through, before and after training."""
    if config.pooler == "cls":
        return "raw [CLS] vector (MLP in training only)" if config.resolved_mlp_only_train else \
            "[CLS] through the MLP"
    return {"cls_before_pooler": "raw [CLS] vector", "avg_first_last": "first-last average"}.get(
        config.pooler, f"`{config.pooler}` vector")


def _legend_setting(preset) -> str:
    figure, other = preset.paper, preset.counterpart
    setting = ablations.SETTING_WORDS[figure.setting]
    if figure.note.startswith("setting not stated"):
        setting += " (inferred)"
    said = f"paper: {figure.table} “{figure.row}”, {setting}"
    if other is not None:
        said += f"; unsupervised, our pooler: {other.value:.1f} ({other.table})"
    return said + _flags(preset)


def plane_runs(results: list) -> list[dict]:
    runs_ = []
    for r in results:
        preset = ablations.PRESETS_BY_KEY.get(r.key)
        runs_.append({"label": r.label, "uniformity": [h["uniformity"] for h in r.history],
                      "alignment": [h["alignment"] for h in r.history], "ours": r.after["spearman"],
                      "paper": r.paper_stsb_dev,
                      "setting": "" if preset is None else _legend_setting(preset),
                      "start": "" if preset is None else scored_vector_said(preset.config)})
    return runs_


def _best_said(verdict: dict) -> str:
    same = "the same row" if verdict["same_best"] else "**not the same row**"
    rho = verdict["rank_correlation"]
    order = "" if math.isnan(rho) else f"; rank correlation of the rows, ours against the paper's: {rho:.2f}"
    return f"best row: the paper's {verdict['paper_best']}, ours {verdict['ours_best']} ({same}){order}"


def notes_markdown(results: list) -> str:
    compared = ablations.comparisons(results)
    if compared:
        sections, all_agree = [], True
        for table in dict.fromkeys(c.table for c in compared):
            items = [c for c in compared if c.table == table]
            verdict = ablations.agreement([r for r in results if ablations.GROUP_TABLES[r.group] == table])
            all_agree &= bool(verdict["same_best"]) and all(c.verdict == "agrees" for c in items)
            lines = "\n".join(f"- {VERDICT_WORDS[c.verdict]}: {c.sentence()}" for c in items)
            sections.append(f"**{table}** · {_best_said(verdict)}\n{lines}")
        counts = {v: sum(c.verdict == v for c in compared) for v in VERDICT_WORDS}
        if all_agree:
            head = (f"**Our miniature agrees with the paper on all {len(compared)} row(s) compared with their "
                    "table's default, and on each table's best row** (direction and size below).")
        else:
            head = (f"**Where our miniature agrees with the paper and where it does not** ({counts['agrees']} "
                    f"agree, {counts['differs']} differ, {counts['unclear']} too small to tell). Each row against "
                    "its table's default: the paper's difference, then ours.")
        found = head + "\n\n" + "\n\n".join(sections)
    else:
        found = ("**Nothing is compared with the paper yet.** A setting is compared with its table's default run "
                 "(e.g. dropout 0 with dropout 0.1): run both. A single run's gain from its start says nothing "
                 "about the paper's difference.")
    groups = {r.group for r in results}
    settings = ""
    if "temperature" in groups:
        settings += f"\n\n**Table D.1's setting:** {ablations.TEMPERATURE_NOTE}"
    if "hard_negatives" in groups:
        sup = ablations.PRESETS_BY_KEY[ablations.DEFAULT_IN_GROUP["hard_negatives"]]
        settings += (f"\n\n**Table 7's setting:** ours is {ablations.our_setting(sup)}; the paper's is "
                     f"{ablations.paper_setting(sup)}.")
    unequal = ablations.unequal_lengths(results)
    warning = f"⚠️ **{unequal}**\n\n" if unequal else ""
    scale = f"\n\n**Trained at scale:** {trained_at_scale()}" if results else ""
    return (f"{warning}{found}{settings}{scale}\n\n**Why:** {ablations.MINIATURE_CAVEAT}\n\n"
            f"<small>{PAPER_NOTE} {START_NOTE}</small>")


def ablation_outputs(session: Session) -> dict[str, Any]:
    """The plane, the table and the notes of the session's preset runs."""
    results, _ = session.presets()
    plane = (plots.ablation_plane(plane_runs(results)) if results else
             plots.placeholder("Run a preset: each run is drawn here, on top of the others.", height=460))
    return {"plane": plane, "table": paper_table(results), "notes": notes_markdown(results)}


def preset_shown(session: Session, preset, update: runs.RunUpdate) -> dict[str, Any] | None:
    """What the Ablations panel shows for one update of a preset run (None: nothing changes on screen)."""
    match update:
        case runs.Waiting(position, eta_s, _, _):
            return {"status": f"**{preset.label}**: waiting for a training slot — number {position} in line, "
                              f"estimated start within {eta_s:.0f} s.", "session": session}
        case runs.LeftQueue():
            return {"status": f"**{preset.label}**: you left the training queue; nothing was trained.",
                    "session": session}
        case runs.Started(title, eval_name, _):
            return {"status": f"**{title}**: measuring the start on {eval_name}… Ours: "
                              f"{ablations.our_setting(preset)}. Paper: {paper_said(preset)}."
                              f"{differences_said(preset)}", **ablation_outputs(session), "session": session}
        case runs.Progress(event, history, _):
            line = f"**{preset.label}**: step {event.step} / {event.total_steps} · {event.elapsed_s:.0f} s"
            if history.spearman:
                line += f" · STS {history.spearman[0]:.1f} → {history.spearman[-1]:.1f}"
            return {"status": line, "session": session}
        case runs.Problem(error, where):
            report_error(error, where)
            return None
        case runs.Finished(reason, None, _, _):
            return {"status": f"**{preset.label}**: {reason.lower()} before the run finished; it is not compared "
                              "with the paper.", **ablation_outputs(session), "session": session}
        case runs.Finished(reason, result, _, _):
            reason = "time budget reached" if reason == "Time budget reached" else "done"
            return {"status": f"**{preset.label}** {reason}: {result.steps} steps in {result.train_s:.0f} s of "
                              f"training from `{ablations.START_MODEL}`; STS {result.before['spearman']:.1f} → "
                              f"{result.after['spearman']:.1f} on {result.eval_name}, "
                              f"{ablations.our_setting(preset)}. Paper: {paper_said(preset)}."
                              f"{differences_said(preset)} Trained at scale: {trained_at_scale(short=True)}.",
                    **ablation_outputs(session), "session": session}
    return None


@guarded
def run_preset(studio: Studio, key: str, session: Session, client: str = "local") -> Iterator[dict[str, Any]]:
    """Handler (generator): train a private copy with one preset for at most a few minutes, show its progress.

    Presets wait in the fine-tunes' training queue, and count as the visitor's one run.
    """
    preset = ablations.get_preset(check_choice(key, "Preset", [p.key for p in ablations.PRESETS]))
    for update in runs.run(studio, session, runs.PresetJob(preset), client):
        screen = preset_shown(session, preset, update)
        if screen is not None:
            yield screen


def preset_event(studio: Studio, key: str, choice: str, session: Session, request: gr.Request | None = None
                 ) -> Iterator[dict[str, Any]]:
    """The Run preset event (the picker's ``choice`` is a parameter of the endpoint, unused: presets always start
    from the raw model); the run counts against the sender's address, with their fine-tunes."""
    yield from run_preset(studio, key, session, client_address(request, studio.config.trusted_proxy))


@guarded
def stop_preset(session: Session) -> dict[str, Any]:
    """Handler for the panel's Stop: the session's run (a preset or a fine-tune) ends after its current step."""
    if runs.request_stop(session):
        return {"status": "Stopped.", "session": session}
    return {"status": "**Stopping after this step…**", "session": session}


@guarded
def clear_runs(session: Session) -> dict[str, Any]:
    session.clear_presets()
    return {"status": "Runs cleared.", **ablation_outputs(session), "session": session}


# --- the cone ---

def cone_sample(studio: Studio, per_topic: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``per_topic`` sentences of each topic of the bundled corpus (seeded), topic by topic."""
    corpus = studio.bundled_corpus()
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    topics = corpus.topics or ["(none)"] * len(corpus.sentences)
    for topic in dict.fromkeys(topics):
        idx = [i for i, t in enumerate(topics) if t == topic]
        for i in sorted(rng.choice(idx, size=min(per_topic, len(idx)), replace=False)):
            sentences.append(corpus.sentences[i])
            labels.append(topic)
    return sentences, labels


def cone_models(studio: Studio, session: Session, choice: str | None = None):
    """(before encoder, after encoder, after's name): the run the picker names, else the session's latest run,
    else the latest preset."""
    record, preset = studio.run_for(choice, session) or session.finetuned, session.preset_run
    if record is not None:
        return (studio.registry.get(record.base_name, record.base_pooler), record.encoder,
                f"your **{record.label}** ({record.summary})")
    if preset is not None:  # presets always start from the raw model
        return studio.registry.get(ablations.START_MODEL, ablations.START_POOLER), preset.encoder, preset.label
    raise InputError("There is no trained model yet: run the one-minute fine-tune (Fine-tune tab) or an "
                     "ablation preset, then draw the cone.")


@guarded
def draw_cone(studio: Studio, session: Session, choice: str | None = None,
              progress=gr.Progress()) -> dict[str, Any]:
    """Handler: before | after as arrows on one linear basis, with the anisotropy of each (the picked run, else
    the latest run or preset)."""
    from simcse_core.evaluation.metrics import anisotropy
    from simcse_core.teaching.projection import cone_view

    before_model, after_model, name = cone_models(studio, session, choice)
    sentences, labels = cone_sample(studio, CONE_STATS_PER_TOPIC)
    progress(0.2, desc="Encoding with the model before training")
    before = before_model.encode(sentences)
    progress(0.6, desc="Encoding with the trained model")
    after = after_model.encode(sentences)
    view = cone_view(before, after)
    shown = [k for k in range(len(sentences)) if k % CONE_STATS_PER_TOPIC < CONE_PER_TOPIC]
    a_before, a_after = anisotropy(before), anisotropy(after)
    figure = plots.cone_figure(view.before[shown], view.after[shown], [labels[k] for k in shown],
                               [sentences[k] for k in shown],
                               (f"Before — mean cosine of two sentences {a_before:.2f}",
                                f"After — mean cosine {a_after:.2f}"))
    caption = (f"### Mean cosine of two sentences: {a_before:.2f} before → {a_after:.2f} after\n"
               f"**Before** (`{before_model.description}`) and **after** ({name}): {len(shown)} sentences of "
               f"{len(set(labels))} topics as arrows from the centre, on two axes shared by both panels; axis 1 is "
               f"the direction all sentences share. A narrow fan of long arrows is the cone: any two sentences look "
               f"alike.\n\n<small>A plain linear projection of the unit vectors (no UMAP). It keeps each arrow's "
               f"direction and length within these two axes, on the same axes before and after; it drops the other "
               f"{before.shape[1] - 2} directions (the axes keep {view.captured[0]:.0%} of the squared length "
               f"before, {view.captured[1]:.0%} after), so arrows that overlap may be far apart in full. UMAP, in "
               f"the Embedding map tab, keeps neighbours instead, which is why its before and after look "
               f"alike.</small>")
    return {"cone_caption": caption, "cone_plot": figure}


# --- exports ---

@guarded
def export_projector(studio: Studio, session: Session, progress=gr.Progress()) -> dict[str, Any]:
    """Handler: a zip of vectors.tsv + metadata.tsv (bundled corpus; base and trained model) for the Projector."""
    from simcse_core.interop.export import write_projector_files

    corpus = studio.bundled_corpus()
    base = studio.base_encoder()
    models = [(base.description, base)]
    try:
        before_model, after_model, name = cone_models(studio, session)
        models = [(before_model.description, before_model), (name, after_model)]
    except ValueError:
        pass
    vectors, meta = [], {"sentence": [], "topic": [], "model": []}
    for k, (label, encoder) in enumerate(models):
        progress(0.1 + 0.8 * k / len(models), desc=f"Encoding the corpus with {label}")
        vectors.append(encoder.encode(corpus.sentences))
        meta["sentence"] += corpus.sentences
        meta["topic"] += corpus.topics or ["(none)"] * len(corpus.sentences)
        meta["model"] += [label] * len(corpus.sentences)
    folder = session.folder(studio.config.temp_root)
    vec, met = write_projector_files(folder, np.concatenate(vectors), meta)
    zip_path = folder / "embedding-projector.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(vec, vec.name)
        archive.write(met, met.name)
    note = (f"{len(meta['sentence']):,} vectors ({', '.join(m for m, _ in models)}). Open projector.tensorflow.org "
            "→ Load → choose vectors.tsv, then metadata.tsv; colour by “topic” or “model”.")
    return {"projector_file": str(zip_path), "export_note": note, "session": session}


@guarded
def export_tables(studio: Studio, session: Session) -> dict[str, Any]:
    """Handler: CSVs of the preset results (evaluation figures) and of the latest run's history."""
    from simcse_core.interop.export import write_csv, write_run_history

    results, events = session.presets()
    if not results:
        raise InputError("Run an ablation preset first: its evaluation results and history are what is exported.")
    folder = session.folder(studio.config.temp_root)
    table = write_csv(folder / "ablation-results.csv", [r.row() for r in results])
    latest = results[-1]
    history = write_run_history(folder / f"run-history-{latest.key}.csv", events[latest.key])
    return {"results_file": str(table), "history_file": str(history), "session": session,
            "export_note": f"Results of {len(results)} run(s); history of “{latest.label}”."}


# --- layout ---


def build(studio: Studio, picker: gr.Dropdown, pooler_picker: gr.Dropdown, session: gr.State) -> gr.Tabs:
    """Lay out the tab (inside a ``gr.Tab``), wire its events, and return its inner tabs (for the lesson)."""
    with gr.Row(equal_height=False, elem_id="inside-start-row"):
        start = OptionalRadio(START_CHOICES, value=START_RAW, label="Start from (the twins and the loss)",
                              elem_id="inside-start", scale=2)
        start_note = gr.Markdown(describe_start(START_RAW, studio.config.base_label, studio.config.default_pooler),
                                 elem_id="inside-start-note")
    with gr.Tabs(elem_id="inside-tabs") as inner:
        with gr.Tab("Dropout twins", id="inside-twins", elem_id="inside-twins"):
            with gr.Row(equal_height=False):
                twin_text = gr.Textbox(TWIN_SENTENCES, label="One to eight sentences, one per line", lines=3,
                                       max_lines=8, elem_id="twins-text", scale=3)
                with gr.Column(scale=2, min_width=300):
                    twin_run = gr.Button("Encode each sentence twice", variant="primary", elem_id="twins-run")
                    twin_rate = gr.Slider(*_range("dropout"), value=ablations.UNSUP.dropout, step=0.05,
                                          label="Dropout rate", elem_id="twins-dropout")
            twin_summary = gr.Markdown("Press the button: each sentence goes through the model twice with dropout on, "
                                       "and twice with it off.", elem_id="twins-summary", container=True,
                                       padding=True)
            twin_plot = gr.Plot(plots.placeholder("The twins appear here.", 380), elem_id="twins-plot",
                                show_label=False)
            glossary.cards("dropout", "cosine", "token")
        with gr.Tab("Inside the loss", id="inside-loss", elem_id="inside-loss"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=320):
                    mode = gr.Radio(MODES, value="unsup", label="Batch", elem_id="loss-mode")
                    loss_run = gr.Button("Encode the batch (training mode)", variant="primary", elem_id="loss-run")
                    with gr.Row():
                        temperature = gr.Slider(*_range("temperature"), value=ablations.UNSUP.temperature, step=0.001,
                                                label="Temperature τ", elem_id="loss-temperature")
                        alpha = gr.Slider(*_range("hard_negative_weight"), value=ablations.SUP.hard_negative_weight,
                                          step=0.1, label="α (hard negatives)", elem_id="loss-alpha")
                with gr.Column(scale=3):
                    loss_summary = gr.Markdown("Press **Encode the batch**: every number inside SimCSE's loss for "
                                               "these sentences appears below.", elem_id="loss-summary",
                                               container=True, padding=True)
            with gr.Accordion("The batch: edit it, or type your own sentences (2-32 lines)", open=False):
                batch = gr.Textbox(LOSS_SENTENCES, show_label=False, lines=4, max_lines=16, elem_id="loss-batch")
            loss_plot = gr.Plot(plots.placeholder("The cosine matrix, each row's softmax and loss appear here.",
                                                  380), elem_id="loss-plot", show_label=False)
            glossary.cards("softmax", "temperature", "loss", "entailment")
        with gr.Tab("Ablations", id="inside-ablations", elem_id="inside-ablations"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=320):
                    preset = gr.Dropdown(PRESET_CHOICES, value="dropout-0",
                                         label=f"Preset (each stops after at most "
                                               f"{ablations.TIME_BUDGET_S / 60:.0f} min; the status shows the "
                                               "seconds measured here)",
                                         elem_id="ablation-preset")
                    with gr.Row():
                        preset_run = gr.Button("Run preset", variant="primary", elem_id="ablation-run")
                        preset_stop = gr.Button("Stop", variant="stop", elem_id="ablation-stop")
                        preset_clear = gr.Button("Clear runs", elem_id="ablation-clear")
                    preset_status = gr.Markdown(f"Each run trains a private copy of `{ablations.START_MODEL}` (the "
                                                "raw model, whatever the pickers say) and is drawn on top of the "
                                                "earlier ones.", elem_id="ablation-status",
                                                container=True, padding=True)
                    notes = gr.Markdown(notes_markdown([]), elem_id="ablation-notes")
                with gr.Column(scale=3):
                    plane = gr.Plot(plots.placeholder("Run a preset: each run is drawn here, on top of the others.",
                                                      460), elem_id="ablation-plane", show_label=False)
            table = gr.Dataframe(paper_table([]), label="The paper's figures and ours", interactive=False,
                                 elem_id="ablation-table", wrap=True)
            glossary.cards("alignment", "uniformity", "spearman")
        with gr.Tab("The cone", id="inside-cone", elem_id="inside-cone"):
            with gr.Row():
                cone_run = gr.Button("Draw before and after", variant="primary", elem_id="cone-run", scale=1)
                cone_caption = gr.Markdown("Draws your fine-tuned model (or your latest preset run) against the "
                                           f"model it started from (`{lessons.START_MODEL}` for the lesson's runs "
                                           "and every preset).", elem_id="cone-caption", container=True,
                                           padding=True)
            cone_plot = gr.Plot(plots.placeholder("Before | after, as arrows.", 560), elem_id="cone-plot",
                                show_label=False)
            glossary.cards("anisotropy", "umap", "cls", "pooler", "mlp")
        with gr.Tab("Glossary", id="inside-glossary", elem_id="inside-glossary"):
            glossary.build()
        with gr.Tab("Export", id="inside-export", elem_id="inside-export"):
            gr.Markdown("Files for other tools. **Embedding Projector**: the bundled corpus's vectors under the base "
                        "model and your trained one. **CSVs**: your preset runs' evaluation results and the latest "
                        "run's history (step, loss, alignment, uniformity, Spearman).")
            with gr.Row():
                projector_run = gr.Button("Embedding Projector files (.zip)", elem_id="export-projector-run")
                tables_run = gr.Button("Results and history (.csv)", elem_id="export-tables-run")
            export_note = gr.Markdown("", elem_id="export-note")
            with gr.Row():
                projector_file = gr.File(label="vectors.tsv + metadata.tsv", interactive=False,
                                         elem_id="export-projector")
                results_file = gr.File(label="Evaluation results", interactive=False, elem_id="export-results")
                history_file = gr.File(label="Run history", interactive=False, elem_id="export-history")

    encode, heavy = studio.queues.encode, studio.queues.heavy
    gr.on([start.change, picker.change, pooler_picker.change], describe_start, [start, picker, pooler_picker],
          start_note, queue=False, api_visibility="private")
    # "Start from" is the last parameter of /dropout_twins and /inside_the_loss (added later: an API call that
    # leaves it out starts from the raw model).
    twins = forms.wire(functools.partial(show_twins, studio),
                       {"text": twin_text, "dropout": twin_rate, "choice": picker, "pooler": pooler_picker,
                        "session": session, "start": start},
                       {"twin_summary": twin_summary, "twin_plot": twin_plot})
    twin_run.click(**twins, api_name="dropout_twins", **encode)
    # Dragging, or typing a value and pressing Enter, redraws (the newest value wins while one draw runs).
    twin_rate.change(**twins, api_visibility="undocumented", trigger_mode="always_last", **encode)

    loss_shown = {"loss_summary": loss_summary, "loss_plot": loss_plot}
    loss_form = {"text": batch, "mode": mode, "dropout": twin_rate, "temperature": temperature, "alpha": alpha,
                 "choice": picker, "pooler": pooler_picker, "session": session, "start": start}
    loss_run.click(**forms.wire(functools.partial(encode_batch, studio), loss_form, {**loss_shown, "session": session}),
                   api_name="inside_the_loss", **encode)
    gr.on([temperature.change, alpha.change],
          **forms.wire(rescore, {"temperature": temperature, "alpha": alpha, "session": session}, loss_shown),
          api_visibility="undocumented", queue=False)
    mode.change(**forms.wire(new_batch, {"mode": mode}, {"batch": batch, "loss_summary": loss_summary}), queue=False,
                api_visibility="private")

    ablation_shown = {"status": preset_status, "plane": plane, "table": table, "notes": notes, "session": session}
    preset_run.click(**forms.wire(functools.partial(preset_event, studio),
                                  {"key": preset, "choice": picker, "session": session}, ablation_shown),
                     api_name="ablation_preset", **studio.queues.preset)
    preset_run.click(None, js=browser.WARN_BEFORE_LEAVING, queue=False, api_visibility="private")
    preset_clear.click(**forms.wire(clear_runs, {"session": session}, ablation_shown), queue=False,
                       api_visibility="private")
    preset_stop.click(**forms.wire(stop_preset, {"session": session}, ablation_shown), api_name="stop_preset",
                      **encode)

    cone_run.click(**forms.wire(functools.partial(draw_cone, studio), {"session": session, "choice": picker},
                                {"cone_caption": cone_caption, "cone_plot": cone_plot}), api_name="cone_view", **heavy)
    projector_run.click(**forms.wire(functools.partial(export_projector, studio), {"session": session},
                                     {"projector_file": projector_file, "export_note": export_note,
                                      "session": session}), api_name="export_projector", **heavy)
    tables_run.click(**forms.wire(functools.partial(export_tables, studio), {"session": session},
                                  {"results_file": results_file, "history_file": history_file,
                                   "export_note": export_note, "session": session}), api_name="export_tables",
                     **encode)
    return inner
