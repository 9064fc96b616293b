"""Fine-tune tab: train a private copy of the model with SimCSE and stream its progress.

The run's lifecycle (queue, train, re-measure, package, compact, keep) is :func:`ui.serving.runs.run`; this tab checks
the form, starts a :class:`ui.serving.runs.FinetuneJob`, and renders each update: loss curve, alignment-uniformity
trajectory, STS curve, status. Stop sets the session's stop flag and answers within seconds; the run ends
after the current step; whatever was trained is re-measured and kept in the session under its name
(``run 2 · unsup · 39 steps · STS 31.2→52.0``), with a zip of it and the corpus embeddings to download.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import gradio as gr

from simcse_core.paths import ASSETS_DIR
from simcse_core.teaching import lessons
from simcse_core.training.config import setting_spec
from simcse_core.training.train import LIVE_RUN, TrainConfig
from ui.present import browser, plots, text
from ui.present.components import OptionalRadio, SettingDropdown, SettingNumber, SettingRadio, SettingSlider
from ui.serving import forms, runs
from ui.serving.config import START_CHOICES, START_PICKED, START_RAW, StudioConfig
from ui.serving.errors import InputError, as_markdown_text, check_choice, check_training_setting, guarded, report_error
from ui.serving.server import client_address
from ui.serving.session import Session
from ui.serving.studio import Studio, check_start
from ui.tabs.finetune.scoring import Scoring, scoring
from ui.tabs.finetune.shown import done_message, figures, finished, shown, status_line

__all__ = ["DATA_CHOICES", "FinetuneForm", "Scoring", "build", "describe_data", "done_message", "figures",
           "finetune_job", "finished", "form_problems", "picked_changed", "run_finetune", "scoring",
           "shown", "start_changed", "status_line", "stop_finetune", "training_data"]

logger = logging.getLogger(__name__)

ASSETS = ASSETS_DIR
SAMPLE_FILES = {text.LESSON_DATA: lessons.LESSON_SENTENCES, text.SAMPLE_UNSUP: ASSETS / "sample_unsup.txt",
                text.SAMPLE_SUP: ASSETS / "sample_sup.csv"}
DATA_CHOICES = [text.LESSON_DATA, text.SAMPLE_UNSUP, text.SAMPLE_SUP, text.UPLOAD_TRAINING]
MODES = [("Unsupervised (sentences)", "unsup"), ("Supervised (pairs or triplets)", "sup")]

# What a run starts with, by where it starts. From the raw model: the lesson's run (lessons.LESSON_RUN, the
# paper's unsupervised setting with the learning rate measured for its size), as long as the live run. From
# any other model (all-MiniLM-L6-v2, already trained for similarity): training.train.LIVE_RUN.
LESSON_DEFAULTS = replace(lessons.LESSON_RUN, time_budget_s=lessons.LESSON_BUDGET_S)
DEFAULTS = LIVE_RUN
SETTING_FIELDS = ("steps", "time_budget_s", "batch_size", "lr", "temperature", "dropout", "pooler", "max_length",
                  "hard_negative_weight")  # the form's settings that follow the start
# The start's settings the form does not show: a run from the raw model keeps the lesson's schedule and beta2.
UNSHOWN_FIELDS = ("decay_fraction", "adam_beta2")
@dataclass(frozen=True)
class FinetuneForm:
    """The Start button's inputs by name, in the order of the ``/finetune`` endpoint's parameters."""

    data_choice: str
    upload: str | None
    mode: str
    steps: float
    batch_size: float
    lr: float
    temperature: float
    dropout: float
    pooler: str
    max_length: float
    budget: float  # TrainConfig.time_budget_s
    picker: str
    hard_negative_weight: float = 1.0
    start: str = START_RAW  # "raw": from the raw model the lessons start from; "picked": from ``picker``


def start_model(studio: Studio, start: str | None, picker: str | None, session: Session) -> str:
    """The canonical name of the model a run starts from: the raw model, or the one picked (a run of this
    session trains again from its own start)."""
    if check_start(start) == START_RAW:
        return lessons.START_MODEL
    start_run = studio.run_for(picker, session)
    return start_run.base_name if start_run is not None else studio.config.model_name(picker)


def start_defaults(base_name: str) -> TrainConfig:
    """The settings a run from ``base_name`` starts with: the lesson's from the raw model, else the live run's."""
    return LESSON_DEFAULTS if base_name == lessons.START_MODEL else DEFAULTS


def training_data(choice: str, upload: str | None, limits=None):
    """The :class:`simcse_core.data.TrainingData` of the chosen sample or upload (DataError if bad)."""
    from simcse_core.data import DEFAULT_LIMITS, load_training_data

    limits = limits or DEFAULT_LIMITS
    if choice == text.UPLOAD_TRAINING:
        if not upload:
            raise InputError("Training file: choose a file to upload first: .txt with one sentence per line "
                             "(unsupervised), or .csv with 2 columns (anchor, positive) or 3 (… , hard_negative).")
        return load_training_data(upload, limits)
    check_choice(choice, "Training data", DATA_CHOICES)
    path = SAMPLE_FILES[choice]
    if not path.is_file():
        raise InputError(f"The sample file {path.name} is missing from this installation.")
    return load_training_data(path, limits)


# --- the form ---------------------------------------------------------------------------------------------------
def _setting_checks(studio: Studio) -> dict[str, Callable]:
    """One check per setting of the form (keyed by its name); each message names its field."""
    config = studio.config

    def number(setting: str, label: str) -> Callable:
        return lambda v: check_training_setting(v, setting, label, config.setting_range(setting))

    return {
        "mode": lambda v: check_training_setting(v, "mode", "Mode"),
        "steps": number("steps", "Steps"),
        "batch_size": number("batch_size", "Batch size"),
        "lr": number("lr", "Learning rate"),
        "temperature": number("temperature", "Temperature τ"),
        "dropout": number("dropout", "Dropout"),
        "pooler": lambda v: check_training_setting(v, "pooler", "Pooler"),
        "max_length": number("max_length", "Max length"),
        "budget": number("time_budget_s", "Time budget (seconds)"),
        "hard_negative_weight": number("hard_negative_weight", "Hard-negative weight α"),
        "start": check_start,
    }


def validate_settings(studio: Studio, form: FinetuneForm) -> dict[str, Any]:
    """Every setting checked (InputError naming the first wrong field), as TrainConfig fields."""
    values = asdict(form)
    settings = {name: check(values[name]) for name, check in _setting_checks(studio).items()}
    settings["time_budget_s"] = settings.pop("budget")
    settings.pop("start")
    return settings


FORM_DEFAULTS = {"hard_negative_weight": 1.0, "start": START_RAW}  # the parameters older API calls leave out


def form_problems(studio: Studio, **values) -> dict[str, str]:
    """Gradio validator of Start: the wrong settings only, each with its message, before the run queues.

    ``values``: the Start event's inputs by name (the form's fields and the session, which is not checked).
    """
    problems = {}
    for name, check in _setting_checks(studio).items():
        try:
            check(values.get(name, FORM_DEFAULTS.get(name)))
        except InputError as err:
            problems[name] = str(err)
    problems.update(data_problems(studio, values.get("data_choice"), values.get("upload"), values.get("mode")))
    return problems


def data_problems(studio: Studio, choice: str | None, upload: str | None, mode: str | None = None) -> dict[str, str]:
    """The training data's problem, on the field that causes it: the upload box (or the data choice), or Mode.

    A validator shows it beside that field only; the plots and the earlier run stay as they are.
    """
    from simcse_core.data import DataError

    try:
        data = training_data(choice, upload, studio.config.upload_limits)
    except (InputError, DataError) as err:
        return {"upload" if choice == text.UPLOAD_TRAINING else "data_choice": str(err)}
    if mode in {value for _, value in MODES} and data.mode != mode:
        return {"mode": f"Mode: the data are {data.summary()}, but the mode is '{mode}'. Set the mode to "
                        f"'{data.mode}' or choose other data."}
    return {}


def mark_bad_file(studio: Studio, choice: str | None, upload: str | None) -> dict[str, Any]:
    """Handler, beside the upload's validator: a file that cannot be used stays marked under the form (the
    validator's message can be dismissed; the summary of an earlier file must not stand for this one)."""
    problems = data_problems(studio, choice, upload)
    if not problems:
        return {}
    problem = next(iter(problems.values()))
    return {"data_info": f"⚠️ **This file cannot be used:** {as_markdown_text(problem)} Upload another file or "
                         "choose other data."}


def finetune_job(studio: Studio, form: FinetuneForm, session: Session) -> runs.FinetuneJob:
    """The job a valid form describes (InputError naming the first wrong field)."""
    from simcse_core.training.train import inference_pooler

    settings = validate_settings(studio, form)
    data = training_data(form.data_choice, form.upload, studio.config.upload_limits)
    if data.mode != settings["mode"]:
        raise InputError(f"Mode: the data are {data.summary()}, but the mode is '{settings['mode']}'. Set the "
                         f"mode to '{data.mode}' or choose other data.")
    base_name = start_model(studio, form.start, form.picker, session)
    defaults = start_defaults(base_name)
    config = TrainConfig(**settings, **{name: getattr(defaults, name) for name in UNSHOWN_FIELDS})
    return runs.FinetuneJob(data=data, config=config, base_name=base_name,
                            base_pooler=inference_pooler(config, settings["pooler"]))


# --- handlers ---------------------------------------------------------------------------------------------------
@guarded
def run_finetune(studio: Studio, form: FinetuneForm, session: Session, client: str = "local"
                 ) -> Iterator[dict[str, Any]]:
    """Handler (generator): check the form, wait for a training slot, train a copy of the model, show every step.

    ``client``: the address the run counts against (ui.serving.server.client_address)."""
    job = finetune_job(studio, form, session)
    for update in runs.run(studio, session, job, client):
        screen = shown(studio, session, update, job)
        if screen is not None:
            yield screen


def start_event(studio: Studio, session: Session, request: gr.Request | None = None, **form
                ) -> Iterator[dict[str, Any]]:
    """The Start button's event: its inputs by name (see :class:`FinetuneForm`), and who sent them."""
    client = client_address(request, studio.config.trusted_proxy)
    yield from run_finetune(studio, FinetuneForm(**form), session, client)


@guarded
def stop_finetune(studio: Studio, session: Session) -> dict[str, Any]:
    """Handler for Stop: leave the queue, or end the run after the current step and keep what it trained."""
    if not runs.request_stop(session):  # answers within seconds; the run's own updates show how it ended
        return {"status": "**Stopping after this step…** what was trained is then measured and kept here."}
    record = session.finetuned
    if record is None:
        return finished(studio, session, "Stopped; nothing was trained.", None)
    try:
        runs.package(studio, session, record)
    except (OSError, InputError) as err:
        report_error(err, "package")
    message = f"Stopped. Your runs are kept in the model picker: {', '.join(session.run_labels())}."
    return finished(studio, session, message, record)


@guarded
def describe_data(choice: str, upload: str | None) -> dict[str, Any]:
    """Handler: show what the chosen training data contain, set the mode, show the upload box if needed."""
    show_upload = gr.update(visible=choice == text.UPLOAD_TRAINING)
    if choice == text.UPLOAD_TRAINING and not upload:
        return {"data_info": "Upload a file: .txt (one sentence per line) or .csv with 2–3 columns.",
                "upload": show_upload}
    data = training_data(choice, upload)
    example = data.examples[0]
    example = example if isinstance(example, str) else " | ".join(example)
    summary = (f"**{as_markdown_text(data.summary())}** from {as_markdown_text(str(data.source))}. First example: "
               f"“{as_markdown_text(example[:160])}”")  # a visitor's text, shown as text, never as markup
    if data.note:
        summary += f"\n\n⚠️ {data.note}"
    return {"data_info": summary, "mode": data.mode, "upload": show_upload}


def describe_start(base_name: str, switched: bool = False) -> str:
    """The line under "Start from": the model a run starts from, and whose settings the form holds."""
    defaults = start_defaults(base_name)
    if base_name == lessons.START_MODEL:
        what = (f"The run starts from **`{base_name}`** with the lesson's settings ({text.settings_said(defaults)}), "
                "on the lesson's sentences.")
    else:
        what = (f"The run starts from **`{base_name}`** (picked at the top) with the live run's settings "
                f"({text.settings_said(defaults)}).")
    return f"{'**Settings switched.** ' if switched else ''}{what}"


@guarded
def start_changed(studio: Studio, start: str, picker: str, data_choice: str, session: Session) -> dict[str, Any]:
    """Handler for "Start from" (and the picker, when the run starts from it): the settings switch to that start's
    defaults, the default training data follow, and the screen says so."""
    base_name = start_model(studio, start, picker, session)
    defaults = start_defaults(base_name)
    shown = {name: getattr(defaults, name) for name in SETTING_FIELDS}
    shown["budget"] = shown.pop("time_budget_s")
    if data_choice in (text.LESSON_DATA, text.SAMPLE_UNSUP):  # a default, not the visitor's own choice
        shown["data_choice"] = text.LESSON_DATA if base_name == lessons.START_MODEL else text.SAMPLE_UNSUP
        shown["mode"] = defaults.mode
    return {**shown, "start_note": describe_start(base_name, switched=True)}


def picked_changed(studio: Studio, start: str, picker: str, data_choice: str, session: Session) -> dict[str, Any]:
    """Handler for the picker: when the run starts from the picked model, its settings follow it (else nothing
    changes: ``{}``, every output left as it is by :func:`ui.serving.forms.wire`)."""
    if start != START_PICKED:
        return {}
    return start_changed(studio, start, picker, data_choice, session)


def setting_slider(config: StudioConfig, name: str, label: str, info: str, elem_id: str,
                   step: float | None = None) -> SettingSlider:
    """A slider of the TrainConfig setting ``name``: the lesson run's value, the core's range (narrowed by the app)."""
    low, top = config.setting_range(name)
    return SettingSlider(low, top, value=getattr(LESSON_DEFAULTS, name), step=step or setting_spec(name).step or 0.01,
                         label=label, info=info, elem_id=elem_id)


def build(studio: Studio, picker: gr.Dropdown, pooler_picker: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.FINETUNE_INTRO, elem_id="ft-intro")
    with gr.Row():
        with gr.Column(scale=2, min_width=360, elem_id="ft-form"):
            start_from = OptionalRadio(START_CHOICES, value=START_RAW, label="Start from", elem_id="ft-start-from")
            start_note = gr.Markdown(describe_start(lessons.START_MODEL), elem_id="ft-start-note")
            data_choice = SettingRadio(DATA_CHOICES, value=text.LESSON_DATA, label="Training data",
                                       elem_id="ft-data-choice")
            upload = gr.File(label="Your training file", elem_id="ft-upload", visible=False)
            data_info = gr.Markdown("")
            with gr.Accordion("Settings (about a minute of training; they follow “Start from”)", open=True,
                              elem_id="ft-settings"):
                mode = SettingRadio(MODES, value="unsup", label="Mode", info=text.TIP_MODE, elem_id="ft-mode")
                with gr.Row():
                    steps = setting_slider(studio.config, "steps", "Steps", text.TIP_STEPS, "ft-steps")
                    budget = setting_slider(studio.config, "time_budget_s", "Time budget (seconds)",
                                            text.TIP_BUDGET, "ft-budget", step=5)
                with gr.Row():
                    batch = setting_slider(studio.config, "batch_size", "Batch size", text.TIP_BATCH, "ft-batch")
                    lr_low, lr_high = studio.config.setting_range("lr")
                    lr = SettingNumber(value=LESSON_DEFAULTS.lr, label="Learning rate", info=text.TIP_LR,
                                       elem_id="ft-lr", minimum=lr_low, maximum=lr_high)
                with gr.Row():
                    temperature = setting_slider(studio.config, "temperature", "Temperature τ",
                                                 text.TIP_TEMPERATURE, "ft-temperature")
                    dropout = setting_slider(studio.config, "dropout", "Dropout", text.TIP_DROPOUT, "ft-dropout")
                with gr.Row():
                    pooler = SettingDropdown(text.pooler_choices(), value=LESSON_DEFAULTS.pooler, label="Pooler",
                                         info=text.TIP_POOLER, elem_id="ft-pooler")
                    max_length = setting_slider(studio.config, "max_length", "Max length", text.TIP_MAXLEN,
                                                "ft-maxlen")
                hard_negative_weight = setting_slider(
                    studio.config, "hard_negative_weight", "Hard-negative weight α",
                    "Supervised triplets only: weight of each anchor's own contradiction. Paper: 1 (Table 7).",
                    "ft-alpha")
            with gr.Row():
                start = gr.Button("Start fine-tuning", variant="primary", elem_id="ft-start")
                stop = gr.Button("Stop", variant="stop", elem_id="ft-stop", interactive=False)
        with gr.Column(scale=3, elem_id="ft-results"):
            status = gr.Markdown("Press **Start fine-tuning** to train a private copy of the model.",
                                 elem_id="ft-status", container=True, padding=True)
            with gr.Row(elem_id="ft-charts"):
                loss_plot = gr.Plot(plots.placeholder("The loss curve appears here.", plots.CHART_HEIGHT),
                                    elem_id="ft-loss-plot", show_label=False)
                sts_plot = gr.Plot(plots.placeholder("STS Spearman appears here.", plots.CHART_HEIGHT),
                                   elem_id="ft-sts-plot", show_label=False)
                au_plot = gr.Plot(plots.placeholder("Alignment vs uniformity appears here.", plots.CHART_HEIGHT),
                                  elem_id="ft-au-plot", show_label=False)  # its own line, but in presenter mode
            gr.Markdown(text.AU_NOTE, elem_id="ft-au-note")
            with gr.Row():
                model_file = gr.File(label="Fine-tuned model (.zip for this app or SentenceTransformer)",
                                     elem_id="ft-download-model", interactive=False, height=110)
                emb_file = gr.File(label="Corpus embeddings (.npy, rows in corpus order)",
                                   elem_id="ft-download-emb", interactive=False, height=110)

    data_fields = {"choice": data_choice, "upload": upload}
    data_shown = {"data_info": data_info, "mode": mode, "upload": upload}
    data_choice.change(**forms.wire(describe_data, data_fields, data_shown), queue=False, api_visibility="private")
    upload.upload(**forms.wire(describe_data, data_fields, data_shown), api_name="check_training_file",
                  validator=forms.validator(lambda choice, upload: data_problems(studio, choice, upload),
                                            data_fields), **studio.queues.encode)
    upload.upload(**forms.wire(functools.partial(mark_bad_file, studio), data_fields, {"data_info": data_info}),
                  queue=False, api_visibility="private")
    # A new start brings its settings (and default data); the picker matters when the run starts from it.
    settings_shown = {"steps": steps, "budget": budget, "batch_size": batch, "lr": lr, "temperature": temperature,
                      "dropout": dropout, "pooler": pooler, "max_length": max_length,
                      "hard_negative_weight": hard_negative_weight, "data_choice": data_choice, "mode": mode,
                      "start_note": start_note}
    start_fields = {"start": start_from, "picker": picker, "data_choice": data_choice, "session": session}
    start_from.change(**forms.wire(functools.partial(start_changed, studio), start_fields, settings_shown),
                      queue=False, api_visibility="private")
    picker.change(**forms.wire(functools.partial(picked_changed, studio), start_fields, settings_shown),
                  queue=False, api_visibility="private")
    # The /finetune endpoint's parameters, in this order (the session is not one: gradio keeps it); "start" came
    # last, later: an API call that leaves it out starts from the raw model.
    form = {"data_choice": data_choice, "upload": upload, "mode": mode, "steps": steps, "batch_size": batch,
            "lr": lr, "temperature": temperature, "dropout": dropout, "pooler": pooler, "max_length": max_length,
            "budget": budget, "picker": picker, "hard_negative_weight": hard_negative_weight, "start": start_from}
    screen = {"status": status, "loss_plot": loss_plot, "au_plot": au_plot, "sts_plot": sts_plot,
              "model_file": model_file, "emb_file": emb_file, "picker": picker, "pooler_picker": pooler_picker,
              "session": session, "start": start, "stop": stop}
    inputs = {**form, "session": session}
    start.click(**forms.wire(functools.partial(start_event, studio), inputs, screen), api_name="finetune",
                validator=forms.validator(functools.partial(form_problems, studio), inputs),
                **studio.queues.train)
    start.click(None, js=browser.WARN_BEFORE_LEAVING, queue=False, api_visibility="private")
    # Stop sets the session's stop flag (it stops a preset of the session too): a waiting run leaves the queue
    # within a second, a training run ends after its step, and its own stream shows what was kept.
    stop.click(**forms.wire(functools.partial(stop_finetune, studio), {"session": session}, screen),
               api_name="stop_finetune", **studio.queues.encode)
