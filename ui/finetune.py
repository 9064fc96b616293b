"""Fine-tune tab: train a private copy of the model with SimCSE and stream its progress.

The run is a generator handler: each :class:`simcse_core.training.train.TrainEvent` becomes one UI update (loss curve,
alignment-uniformity trajectory, STS curve, status). Stop both cancels the generator and sets a flag the
loop checks, so the run ends after the current step; whatever was trained is re-measured and kept in the
session under its name (``run 2 · unsup · 39 steps · STS 80.6→84.4``), with a zip of it and the corpus
embeddings to download. Runs wait for a training slot in the server's TrainingQueue first.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np

from simcse_core.model.pooling import POOLERS
from simcse_core.runtime import background_iter
from simcse_core.training.losses import chance_loss
from simcse_core.training.train import LIVE_RUN, LIVE_RUN_EVALUATIONS
from ui import plots, text
from ui.components import SettingDropdown, SettingNumber, SettingRadio, SettingSlider
from ui.state import (
    ENCODE_QUEUE,
    TRAIN_NICENESS,
    TRAIN_QUEUE,
    FineTuneRecord,
    InputError,
    Session,
    Studio,
    check_choice,
    check_number,
    ensure_session,
    guarded,
    report_error,
)

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SAMPLE_FILES = {text.SAMPLE_UNSUP: ASSETS / "sample_unsup.txt", text.SAMPLE_SUP: ASSETS / "sample_sup.csv"}
MODES = [("Unsupervised (sentences)", "unsup"), ("Supervised (pairs or triplets)", "sup")]


# What a first-time visitor starts with: training.train.LIVE_RUN (the paper's settings, about a minute long).
DEFAULTS = LIVE_RUN
# Steps take about 0.4-0.7 s here; the browser gets at most one update per this many seconds (plus every
# evaluation and the end), so drawing progress never competes with training and other visitors for the CPU.
STREAM_EVERY_S = 1.0


@dataclass
class RunHistory:
    """What the plots of one run show."""

    eval_name: str
    chance: float | None = None  # ln(candidates per anchor): the loss of random guessing
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    spearman: list[float] = field(default_factory=list)
    alignment: list[float] = field(default_factory=list)
    uniformity: list[float] = field(default_factory=list)

    def add(self, event) -> None:
        if event.loss is not None:
            self.steps.append(event.step)
            self.losses.append(event.loss)
        if event.metrics:
            self.eval_steps.append(event.step)
            self.spearman.append(event.metrics["spearman"])
            self.alignment.append(event.metrics["alignment"])
            self.uniformity.append(event.metrics["uniformity"])

    def figures(self, since_evaluations: int | None = None) -> tuple:
        """The loss, alignment-uniformity and STS figures.

        With ``since_evaluations`` (the number of evaluations the browser already shows), the two evaluation
        figures are ``gr.skip()`` unless an evaluation came since: building a figure costs about 12 ms of
        Python here, and the streaming loop should leave the CPU to training and to other visitors.
        """
        loss = plots.loss_curve(self.steps, self.losses, self.chance) if self.steps else plots.placeholder(
            "The loss appears after the first step.", height=320)
        if since_evaluations is not None and since_evaluations == len(self.eval_steps):
            return loss, gr.skip(), gr.skip()
        au = plots.alignment_uniformity(self.eval_steps, self.uniformity, self.alignment) if self.eval_steps \
            else plots.placeholder("Measuring the starting point…", height=320)
        sts = plots.sts_curve(self.eval_steps, self.spearman, self.eval_name, paper_references(self.eval_name)) \
            if self.eval_steps else plots.placeholder("Measuring the starting point…", height=320)
        return loss, au, sts


def paper_references(eval_name: str) -> list[tuple[float, str]]:
    """The paper's STS-B dev figure (unsupervised BERT-base, Table 3) when the live curve is on STS-B dev."""
    from simcse_core.evaluation.paper import STSB_DEV

    if not eval_name.startswith("STS-B dev"):
        return []
    return [(STSB_DEV["unsup"], f"paper, unsup BERT-base after 1 epoch: {STSB_DEV['unsup']}")]


def training_data(choice: str, upload: str | None, limits=None):
    """The :class:`simcse_core.data.TrainingData` of the chosen sample or upload (DataError if bad)."""
    from simcse_core.data import DEFAULT_LIMITS, load_training_data

    limits = limits or DEFAULT_LIMITS
    if choice == text.UPLOAD_TRAINING:
        if not upload:
            raise InputError("Training file: choose a file to upload first: .txt with one sentence per line "
                             "(unsupervised), or .csv with 2 columns (anchor, positive) or 3 (… , hard_negative).")
        return load_training_data(upload, limits)
    check_choice(choice, "Training data", [text.SAMPLE_UNSUP, text.SAMPLE_SUP, text.UPLOAD_TRAINING])
    path = SAMPLE_FILES[choice]
    if not path.is_file():
        raise InputError(f"The sample file {path.name} is missing from this installation.")
    return load_training_data(path, limits)


def live_eval_pairs(studio: Studio):
    """The STS pairs scored while training: a fixed sample of STS-B dev (or the demo pairs)."""
    from simcse_core.evaluation.sets import default_eval_pairs

    return default_eval_pairs().sample(studio.config.live_eval_pairs)


def estimate_steps(studio: Studio, batch_size: int, steps: int, budget: float) -> int:
    """Roughly how many steps fit in the time budget (for spacing the evaluations)."""
    per_step = studio.seconds_per_example * batch_size
    return max(1, min(steps, int(budget / max(per_step, 1e-3))))


def status_line(event, history: RunHistory, running: bool) -> str:
    """The status markdown: steps done, time left, Spearman before → now."""
    parts = [f"**{'Training…' if running else 'Finished'}** step {event.step} / {event.total_steps}",
             f"{event.elapsed_s:.0f} s elapsed"]
    if running and event.remaining_s is not None:
        parts.append(f"about {event.remaining_s:.0f} s left")
    line = " · ".join(parts)
    if history.spearman:
        first, last = history.spearman[0], history.spearman[-1]
        line += (f"\n\nSTS Spearman on {history.eval_name}: **{first:.1f} → {last:.1f}** "
                 f"({last - first:+.1f}, measured at step {history.eval_steps[-1]})")
    if history.losses:
        line += f" · loss {history.losses[-1]:.3f}"
    return line


def write_model_zip(studio: Studio, session: Session, encoder, run_id: int) -> str:
    """Save a run's trained (float32) model as a zip in the session's folder; its path."""
    folder = session.folder(studio.config.temp_root) / f"simcse-finetuned-run{run_id}"
    encoder.save(folder)
    zip_path = folder.with_suffix(".zip")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
    shutil.rmtree(folder, ignore_errors=True)
    return str(zip_path)


def package(studio: Studio, session: Session, record: FineTuneRecord, progress=None) -> FineTuneRecord:
    """Write the run's zip (unless :func:`keep_run` did) and the corpus embeddings (.npy) once."""
    with session.finalize_lock:
        if record.model_zip and record.embeddings_npy:
            return record
        if not record.model_zip:
            record.model_zip = write_model_zip(studio, session, record.encoder, record.run_id)
        index = studio.get_index(session, record.encoder, record.model_key, progress)
        npy_path = session.folder(studio.config.temp_root) / f"corpus-embeddings-run{record.run_id}.npy"
        np.save(npy_path, np.asarray(index.vectors, dtype=np.float32))
        record.embeddings_npy = str(npy_path)
        return record


def final_outputs(studio: Studio, session: Session, message: str, record: FineTuneRecord | None) -> tuple:
    """Outputs after a run: status, (plots unchanged), downloads, picker with the run selected."""
    if record is None:
        return (message, gr.skip(), gr.skip(), gr.skip(), None, None, gr.skip(), gr.skip(), session,
                gr.update(interactive=True), gr.update(interactive=False))
    try:
        package(studio, session, record)
    except (OSError, InputError) as err:
        report_error(err, "package")
    picker = studio.picker_update(session, value=record.label)
    return (message, gr.skip(), gr.skip(), gr.skip(), record.model_zip, record.embeddings_npy, picker,
            record.encoder.config.pooler, session, gr.update(interactive=True), gr.update(interactive=False))


def done_message(record: FineTuneRecord | None, reason: str, dropped: list[FineTuneRecord] = (),
                 cap: int = 0) -> str:
    if record is None:
        return f"{reason} before the first step finished; nothing was trained."
    gain = ""
    if record.spearman_before is not None and record.spearman_after is not None:
        gain = (f" STS Spearman on {record.eval_name}: **{record.spearman_before:.1f} → "
                f"{record.spearman_after:.1f}** ({record.spearman_after - record.spearman_before:+.1f}).")
    notice = "".join(f"\n\nThe oldest run, **{old.label}**, was removed: a session keeps at most "
                     f"{cap} runs (delete runs you no longer need with **Delete run**)." for old in dropped)
    return (f"**{reason}** — {record.summary}.{gain}\n\nKept as **{record.label}** in the model picker at the "
            "top: compare it in Retrieval, Embedding map and Evaluate, or download it below. Earlier runs stay "
            f"there until you delete them. The shared model was not changed.{notice}")


MIN_LR, MAX_LR = 1e-7, 1e-2
MAX_BATCH = 256
MAX_TRAIN_LENGTH = 128
MIN_BUDGET_S = 10.0
ALPHA_RANGE = (0.1, 4.0)  # hard-negative weight α (the paper: 1)


def _setting_checks(studio: Studio) -> dict[str, Callable]:
    """One check per fine-tuning setting (keyed by TrainConfig field); each message names its field."""
    config = studio.config
    return {
        "mode": lambda v: check_choice(v, "Mode", [value for _, value in MODES]),
        "steps": lambda v: int(check_number(v, "Steps", 1, config.max_steps, whole=True)),
        "batch_size": lambda v: int(check_number(v, "Batch size", 2, MAX_BATCH, whole=True)),
        "lr": lambda v: check_number(v, "Learning rate", MIN_LR, MAX_LR),
        "temperature": lambda v: check_number(v, "Temperature τ", 0.001, 1.0),
        "dropout": lambda v: check_number(v, "Dropout", 0.0, 0.5),
        "pooler": lambda v: check_choice(v, "Pooler", tuple(POOLERS)),
        "max_length": lambda v: int(check_number(v, "Max length", 8, MAX_TRAIN_LENGTH, whole=True)),
        "time_budget_s": lambda v: check_number(v, "Time budget (seconds)", MIN_BUDGET_S, config.max_time_budget_s),
    }


def validate_settings(studio: Studio, mode: str, steps: float, batch_size: float, lr: float, temperature: float,
                      dropout: float, pooler: str, max_length: float, budget: float) -> dict:
    """Every fine-tuning setting checked (InputError naming the first wrong field), as TrainConfig fields."""
    values = dict(mode=mode, steps=steps, batch_size=batch_size, lr=lr, temperature=temperature, dropout=dropout,
                  pooler=pooler, max_length=max_length, time_budget_s=budget)
    return {name: check(values[name]) for name, check in _setting_checks(studio).items()}


def settings_validator(studio: Studio, data_choice, upload, *args) -> list[dict]:
    """Gradio validator of Start: marks only the wrong fields, each with its message, before the run queues.

    ``args``: the nine settings in the order of :func:`validate_settings`, the picker, the session, then the
    hard-negative weight α.
    """
    checks = [*_setting_checks(studio).values(), lambda v: check_number(v, "Hard-negative weight α", *ALPHA_RANGE)]
    values = [*args[:9], args[11] if len(args) > 11 else 1.0]
    results = []
    for check, value in zip(checks, values):
        try:
            check(value)
            results.append(gr.validate(True, ""))
        except InputError as err:
            results.append(gr.validate(False, str(err)))
    ok = gr.validate(True, "")
    return [ok, ok, *results[:9], ok, ok, results[9]][: 2 + len(args)]


QUEUE_POLL_S = 1.0


def wait_in_queue(studio: Studio, session: Session, budget: float, outputs) -> Iterator[tuple]:
    """Join the training queue and yield status updates until this run may start (or the visitor leaves)."""
    queue = studio.training_queue
    ticket = queue.join(budget)
    try:
        while not queue.wait(ticket, timeout=QUEUE_POLL_S):
            if session.stop_requested.is_set() or session.closed:
                queue.leave(ticket)
                yield outputs(f"You left the training queue. Nothing was trained.{_runs_kept(session)}",
                              start=True)
                return
            position, eta = queue.position(ticket), queue.estimated_wait(ticket)
            training, waiting = queue.counts()
            yield outputs(f"**Waiting for a training slot**: you are **number {position}** in line "
                          f"({training} run{'s' if training != 1 else ''} training, {waiting} waiting). "
                          f"Estimated start: within **{_duration(eta)}** (if every run ahead uses its whole "
                          "time budget). Press **Stop** to leave the queue; the other tabs work meanwhile.")
        yield ticket
    except BaseException:
        queue.leave(ticket)
        raise


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _runs_kept(session: Session) -> str:
    labels = session.run_labels()
    return f" Your earlier runs are kept: {', '.join(labels)}." if labels else ""


@guarded
def run_finetune(studio: Studio, data_choice: str, upload: str | None, mode: str, steps: float,
                 batch_size: float, lr: float, temperature: float, dropout: float, pooler: str,
                 max_length: float, budget: float, picker: str, session: Session | None,
                 hard_negative_weight: float = 1.0) -> Iterator[tuple]:
    """Handler (generator): validate, wait for a training slot, train a copy of the model, stream every step."""
    from simcse_core.training.train import TrainConfig, inference_pooler, train

    settings = validate_settings(studio, mode, steps, batch_size, lr, temperature, dropout, pooler, max_length,
                                 budget)
    session = ensure_session(session)
    if not session.training_idle.is_set():
        raise InputError("A fine-tuning run is already going (or waiting) in this tab. Stop it first.")
    data = training_data(data_choice, upload, studio.config.upload_limits)
    if data.mode != settings["mode"]:
        raise InputError(f"Mode: the data are {data.summary()}, but the mode is '{settings['mode']}'. Set the "
                         f"mode to '{data.mode}' or choose other data.")
    start_run = studio.run_for(picker, session)  # a run of this session trains further from its base model
    base_name = start_run.base_name if start_run is not None else studio.config.model_name(picker)
    pooler = settings["pooler"]
    alpha = check_number(hard_negative_weight, "Hard-negative weight α", *ALPHA_RANGE)
    config = TrainConfig(**settings, hard_negative_weight=alpha, eval_every=1)  # eval_every: set below
    base_pooler = inference_pooler(config, pooler)  # what the base model is compared with
    expected = estimate_steps(studio, config.batch_size, config.steps, config.time_budget_s)
    config = dataclasses.replace(config, eval_every=max(1, expected // max(1, LIVE_RUN_EVALUATIONS - 1)))

    def outputs(status: str, start: bool = False) -> tuple:
        return (status, *[gr.skip()] * 7, session, gr.update(interactive=start), gr.update(interactive=not start))

    session.stop_requested.clear()
    session.training_idle.clear()
    try:
        ticket = None
        for update in wait_in_queue(studio, session, config.time_budget_s, outputs):
            if isinstance(update, tuple):
                yield update
            else:
                ticket = update
        if ticket is None:  # the visitor left the queue
            return

        def release() -> None:  # the run is kept: the slot goes to the next in line, Stop may answer
            studio.training_queue.leave(ticket)
            session.training_idle.set()

        try:
            yield from _train_and_keep(studio, session, data, config, base_name, base_pooler, train, release)
        finally:
            release()
    finally:
        session.training_idle.set()


def _train_and_keep(studio: Studio, session: Session, data, config, base_name: str, base_pooler: str,
                    train, release: Callable[[], None]) -> Iterator[tuple]:
    """Train, stream, then keep the run and ``release`` its slot before anything else is yielded.

    Stop cancels this generator at its next yield, so everything that must happen for a stopped run
    (re-measuring, keeping, releasing) happens in ``finally`` before the next yield.
    """
    eval_pairs = live_eval_pairs(studio)
    shared = studio.registry.get(base_name, base_pooler)
    encoder = shared.copy()  # private: the shared model is never trained
    events = train(encoder, data.examples, config, eval_pairs=eval_pairs)
    run_id = session.new_run_id()
    triplets = config.mode == "sup" and len(data.examples[0]) == 3
    history = RunHistory(eval_name=eval_pairs.name,
                         chance=chance_loss(min(config.batch_size, len(data.examples)), hard_negatives=triplets))
    yield (f"**Starting run {run_id}…** measuring the model before training on {eval_pairs.name} "
           f"({data.summary()}).", *history.figures(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), session,
           gr.update(interactive=False), gr.update(interactive=True))
    last, record, dropped, remeasured = None, None, [], False
    reason = "Stopped"
    stream = background_iter(events, niceness=TRAIN_NICENESS, name=f"train-run-{run_id}")
    try:
        shown_evaluations, shown_at = 0, 0.0
        for event in stream:
            last = event
            history.add(event)
            if event.done:
                reason = "Done" if event.stop_reason == "steps" else "Time budget reached"
            if event.done or event.metrics or event.elapsed_s - shown_at >= STREAM_EVERY_S:
                yield (status_line(event, history, running=not event.done),
                       *history.figures(since_evaluations=shown_evaluations),
                       *[gr.skip()] * 4, session, gr.skip(), gr.skip())
                shown_evaluations, shown_at = len(history.eval_steps), event.elapsed_s
            if session.stop_requested.is_set():
                break
    except Exception as err:  # noqa: BLE001 - keep what was trained and tell the visitor
        report_error(err, "run_finetune")
        reason = "Stopped by an error"
    finally:  # also when Stop cancels this generator: what was trained is measured and kept
        stream.close()  # closes `events` in the training thread after its step: the encoder is never mid-update
        if not session.closed:  # a visitor who left keeps nothing
            remeasured = remeasure(encoder, history, last, eval_pairs)
            record, dropped = keep_run(studio, session, encoder, shared, run_id, base_name, base_pooler, data, last,
                                       history, min(config.batch_size, len(data.examples)), config.mode)
        release()
    if session.closed:
        return
    if remeasured and record is not None:
        yield (f"Re-measured the model kept at step {last.step} on {eval_pairs.name}.",
               *history.figures(), *[gr.skip()] * 4, session, gr.skip(), gr.skip())
    if record is not None:
        yield (f"**Packaging** the model and the corpus embeddings for download… ({record.summary})",
               *[gr.skip()] * 7, session, gr.skip(), gr.skip())
    yield final_outputs(studio, session, done_message(record, reason, dropped, studio.config.max_runs), record)


def remeasure(encoder, history: RunHistory, last, eval_pairs) -> bool:
    """Measure a stopped run's model at its last step, unless the last evaluation already did (True if so)."""
    from types import SimpleNamespace

    from simcse_core.evaluation.metrics import embedding_report

    if last is None or last.step == 0 or (history.eval_steps and history.eval_steps[-1] == last.step):
        return False
    encoder.eval()
    history.add(SimpleNamespace(step=last.step, loss=None, metrics=embedding_report(encoder, eval_pairs)))
    return True


def keep_run(studio: Studio, session: Session, encoder, base, run_id: int, base_name: str, base_pooler: str, data,
             last, history: RunHistory, batch_size: int, mode: str) -> tuple[FineTuneRecord | None, list]:
    """Keep a (possibly stopped) run in the session; (None, []) if no step was made.

    Returns the record and the oldest runs dropped to stay within the session's cap.
    """
    encoder.eval()
    if last is None or last.step == 0:
        return None, []
    if last.train_s > 0:  # learn how long a step takes here, to space the next run's evaluations
        studio.seconds_per_example = last.train_s / last.step / batch_size
    try:  # the download keeps the trained float32 weights
        model_zip = write_model_zip(studio, session, encoder, run_id)
    except (OSError, InputError) as err:  # kept as trained (float32); packaging tries the zip again
        report_error(err, "keep_run")
        model_zip = None
    if model_zip is not None:  # the session then holds only what inference reads (before anyone else sees it)
        try:
            encoder.compact(base=base)
        except Exception as err:  # noqa: BLE001 - a run kept as trained is still a good run
            logger.exception("Run %d kept uncompacted", run_id)
            report_error(err, "keep_run")
    record = FineTuneRecord(
        run_id=run_id, encoder=encoder, base_name=base_name, base_pooler=base_pooler,
        summary=f"{last.step} steps in {last.elapsed_s:.0f} s on {data.summary()}", mode=mode, steps=last.step,
        spearman_before=history.spearman[0] if history.spearman else None,
        spearman_after=history.spearman[-1] if len(history.spearman) > 1 else None,
        eval_name=history.eval_name, model_zip=model_zip,
    )
    dropped = session.add_run(record, studio.config.max_runs)
    return record, dropped


@guarded
def stop_finetune(studio: Studio, session: Session | None) -> tuple:
    """Handler for Stop: leave the queue, or end the run after the current step and keep what it trained."""
    if not isinstance(session, Session):
        return final_outputs(studio, Session(), "Nothing is running.", None)
    session.stop_requested.set()
    if not session.training_idle.wait(timeout=120):
        return ("Stopping… the current step is still finishing.", *[gr.skip()] * 10)
    record = session.finetuned
    message = (f"Stopped. Your runs are kept in the model picker: {', '.join(session.run_labels())}."
               if record is not None else "Stopped; nothing was trained.")
    return final_outputs(studio, session, message, record)


@guarded
def describe_data(choice: str, upload: str | None) -> tuple:
    """Handler: show what the chosen training data contain, set the mode, show the upload box if needed."""
    show_upload = gr.update(visible=choice == text.UPLOAD_TRAINING)
    if choice == text.UPLOAD_TRAINING and not upload:
        return "Upload a file: .txt (one sentence per line) or .csv with 2–3 columns.", gr.skip(), show_upload
    data = training_data(choice, upload)
    example = data.examples[0]
    shown = example if isinstance(example, str) else " | ".join(example)
    summary = f"**{data.summary()}** from {data.source}. First example: “{shown[:160]}”"
    if data.note:
        summary += f"\n\n⚠️ {data.note}"
    return summary, data.mode, show_upload


def build(studio: Studio, picker: gr.Dropdown, pooler_picker: gr.Dropdown, session: gr.State) -> None:
    """Lay out the tab (inside a ``gr.Tab``) and wire its events."""
    gr.Markdown(text.FINETUNE_INTRO, elem_id="ft-intro")
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            data_choice = SettingRadio([text.SAMPLE_UNSUP, text.SAMPLE_SUP, text.UPLOAD_TRAINING],
                                   value=text.SAMPLE_UNSUP, label="Training data", elem_id="ft-data-choice")
            upload = gr.File(label="Your training file", elem_id="ft-upload", visible=False)
            data_info = gr.Markdown("")
            with gr.Accordion("Settings (the paper's, except: about a minute long, and the raw [CLS] pooler as "
                              "the starting point)", open=True, elem_id="ft-settings"):
                mode = SettingRadio(MODES, value="unsup", label="Mode", info=text.TIP_MODE, elem_id="ft-mode")
                with gr.Row():
                    steps = SettingSlider(1, studio.config.max_steps, value=DEFAULTS.steps, step=1, label="Steps",
                                          info=text.TIP_STEPS, elem_id="ft-steps")
                    budget = SettingSlider(MIN_BUDGET_S, studio.config.max_time_budget_s,
                                           value=DEFAULTS.time_budget_s, step=5, label="Time budget (seconds)",
                                           info=text.TIP_BUDGET, elem_id="ft-budget")
                with gr.Row():
                    batch = SettingSlider(2, MAX_BATCH, value=DEFAULTS.batch_size, step=1, label="Batch size",
                                          info=text.TIP_BATCH, elem_id="ft-batch")
                    lr = SettingNumber(value=DEFAULTS.lr, label="Learning rate", info=text.TIP_LR,
                                       elem_id="ft-lr", minimum=MIN_LR, maximum=MAX_LR)
                with gr.Row():
                    temperature = SettingSlider(0.001, 1.0, value=DEFAULTS.temperature, step=0.001,
                                                label="Temperature τ", info=text.TIP_TEMPERATURE,
                                                elem_id="ft-temperature")
                    dropout = SettingSlider(0.0, 0.5, value=DEFAULTS.dropout, step=0.05, label="Dropout",
                                            info=text.TIP_DROPOUT, elem_id="ft-dropout")
                with gr.Row():
                    pooler = SettingDropdown(text.pooler_choices(), value=DEFAULTS.pooler, label="Pooler",
                                         info=text.TIP_POOLER, elem_id="ft-pooler")
                    max_length = SettingSlider(8, MAX_TRAIN_LENGTH, value=DEFAULTS.max_length, step=1,
                                               label="Max length", info=text.TIP_MAXLEN, elem_id="ft-maxlen")
                hard_negative_weight = SettingSlider(
                    *ALPHA_RANGE, value=DEFAULTS.hard_negative_weight, step=0.1, label="Hard-negative weight α",
                    info="Supervised triplets only: weight of each anchor's own contradiction. Paper: 1 (Table 7).",
                    elem_id="ft-alpha")
            with gr.Row():
                start = gr.Button("Start fine-tuning", variant="primary", elem_id="ft-start")
                stop = gr.Button("Stop", variant="stop", elem_id="ft-stop", interactive=False)
        with gr.Column(scale=3):
            status = gr.Markdown("Press **Start fine-tuning** to train a private copy of the model.",
                                 elem_id="ft-status", container=True, padding=True)
            with gr.Row():
                loss_plot = gr.Plot(plots.placeholder("The loss curve appears here.", 320),
                                    elem_id="ft-loss-plot", show_label=False)
                sts_plot = gr.Plot(plots.placeholder("STS Spearman appears here.", 320),
                                   elem_id="ft-sts-plot", show_label=False)
            au_plot = gr.Plot(plots.placeholder("Alignment vs uniformity appears here.", 320),
                              elem_id="ft-au-plot", show_label=False)
            gr.Markdown(text.AU_NOTE, elem_id="ft-au-note")
            with gr.Row():
                model_file = gr.File(label="Fine-tuned model (.zip for this app or SentenceTransformer)",
                                     elem_id="ft-download-model", interactive=False, height=110)
                emb_file = gr.File(label="Corpus embeddings (.npy, rows in corpus order)",
                                   elem_id="ft-download-emb", interactive=False, height=110)

    data_choice.change(describe_data, [data_choice, upload], [data_info, mode, upload], queue=False,
                       api_visibility="private")
    upload.upload(describe_data, [data_choice, upload], [data_info, mode, upload], api_name="check_training_file",
                  **ENCODE_QUEUE)
    outputs = [status, loss_plot, au_plot, sts_plot, model_file, emb_file, picker, pooler_picker, session,
               start, stop]
    run = start.click(
        functools.partial(run_finetune, studio),
        [data_choice, upload, mode, steps, batch, lr, temperature, dropout, pooler, max_length, budget,
         picker, session, hard_negative_weight], outputs, api_name="finetune",
        validator=functools.partial(settings_validator, studio), **TRAIN_QUEUE)
    # Stop cancels the streaming generator (Gradio closes it after the current step; a waiting run leaves the
    # queue) and also sets the session's stop flag, then waits for the run to hand its partial model over.
    stop.click(functools.partial(stop_finetune, studio), [session], outputs, cancels=[run], api_name="stop_finetune",
               **ENCODE_QUEUE)
