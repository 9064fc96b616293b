"""The Export panel: files for other tools (the Embedding Projector's vectors and metadata; the preset runs'
results and the latest run's history as CSV)."""

from __future__ import annotations

import zipfile
from typing import Any

import gradio as gr
import numpy as np

from ui.serving.errors import InputError, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio
from ui.tabs.inside.cone import cone_models


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
