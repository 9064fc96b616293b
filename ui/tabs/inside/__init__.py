"""Inside SimCSE tab: the paper's mechanisms on the real model, one click each.

Panels (inner tabs), one module each: dropout twins (:mod:`.twins`), inside the loss (:mod:`.loss`), ablations
in miniature (:mod:`.presets`), the cone view (:mod:`.cone`), the glossary and exports (:mod:`.exports`); where
the twins and the loss start, and their settings' ranges, in :mod:`.inputs`. Every number comes from
``simcse_core`` (mechanisms, ablations, projection, metrics, export); the handlers validate, call the core and
format. The visitor's panel data (the loss panel's vectors, preset runs, the latest preset model) live in their
:class:`ui.serving.session.Session`, with the rest of their data. This module lays the panels out and wires them.
"""

from __future__ import annotations

import functools

import gradio as gr

from simcse_core.teaching import ablations, lessons
from ui.present import browser, glossary, plots
from ui.present.components import OptionalRadio
from ui.serving import forms
from ui.serving.config import START_CHOICES, START_RAW
from ui.serving.studio import Studio
from ui.tabs.inside.cone import draw_cone
from ui.tabs.inside.exports import export_projector, export_tables
from ui.tabs.inside.inputs import describe_start, setting_range, start_shown_note
from ui.tabs.inside.loss import LOSS_SENTENCES, MODES, encode_batch, new_batch, rescore
from ui.tabs.inside.presets import PRESET_CHOICES, clear_runs, notes_markdown, paper_table, preset_event, stop_preset
from ui.tabs.inside.twins import TWIN_SENTENCES, show_twins


def build(studio: Studio, picker: gr.Dropdown, pooler_picker: gr.Dropdown, session: gr.State) -> gr.Tabs:
    """Lay out the tab (inside a ``gr.Tab``), wire its events, and return its inner tabs (for the lesson)."""
    with gr.Row(equal_height=False, elem_id="inside-start-row"):
        start = OptionalRadio(START_CHOICES, value=START_RAW, label="Start from (the twins and the loss)",
                              elem_id="inside-start", scale=2)
        start_note = gr.Markdown(describe_start(START_RAW, studio.config.base_label, studio.config.default_pooler),
                                 elem_id="inside-start-note")
    with gr.Tabs(elem_id="inside-tabs", overflow_behavior="wrap") as inner:
        with gr.Tab("Dropout twins", id="inside-twins", elem_id="inside-twins"):
            with gr.Row(equal_height=False):
                twin_text = gr.Textbox(TWIN_SENTENCES, label="One to eight sentences, one per line", lines=3,
                                       max_lines=8, elem_id="twins-text", scale=3)
                with gr.Column(scale=2, min_width=300):
                    twin_run = gr.Button("Encode each sentence twice", variant="primary", elem_id="twins-run")
                    twin_rate = gr.Slider(*setting_range("dropout"), value=ablations.UNSUP.dropout, step=0.05,
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
                        temperature = gr.Slider(*setting_range("temperature"), value=ablations.UNSUP.temperature,
                                                step=0.001, label="Temperature τ", elem_id="loss-temperature")
                        alpha = gr.Slider(*setting_range("hard_negative_weight"),
                                          value=ablations.SUP.hard_negative_weight, step=0.1,
                                          label="α (hard negatives)", elem_id="loss-alpha")
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
    gr.on([start.change, picker.change, pooler_picker.change],
          **forms.wire(start_shown_note, {"start": start, "choice": picker, "pooler": pooler_picker},
                       {"note": start_note}), queue=False, api_visibility="private")
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
