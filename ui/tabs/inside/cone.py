"""The cone panel: a trained model against the model it started from, as arrows on one linear basis, with the
mean cosine of two sentences (anisotropy) before and after."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from simcse_core.teaching import ablations
from ui.present import plots
from ui.serving.errors import InputError, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio

CONE_PER_TOPIC = 4  # arrows per topic (12 topics: 48 arrows)
CONE_STATS_PER_TOPIC = 20  # sentences per topic for the basis and the anisotropy figures


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
               f"Measured on {len(sentences)} sentences of the bundled corpus ({CONE_STATS_PER_TOPIC} a topic) "
               f"with {name}; the lesson bar's figures are the lesson run's, on STS-B dev sentences, so the two "
               f"differ.\n\n"
               f"**Before** (`{before_model.description}`) and **after** ({name}): {len(shown)} of those "
               f"sentences, {len(set(labels))} topics, as arrows from the centre, on two axes shared by both "
               f"panels; axis 1 is the direction all sentences share. A narrow fan of long arrows is the cone: any "
               f"two sentences look alike.\n\n<small>A plain linear projection of the unit vectors (no UMAP). It "
               f"keeps each arrow's direction and length within these two axes, on the same axes before and after; "
               f"it drops the other {before.shape[1] - 2} directions (the axes keep {view.captured[0]:.0%} of the "
               f"squared length before, {view.captured[1]:.0%} after), so arrows that overlap may be far apart in "
               f"full. UMAP, in the Embedding map tab, keeps neighbours instead, which is why its before and after "
               f"look alike.</small>")
    return {"cone_caption": caption, "cone_plot": figure}
