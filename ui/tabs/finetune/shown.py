"""What the Fine-tune tab shows of a run: its figures, its status line, its end, each update rendered."""


from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from ui.present import plots, text
from ui.serving import runs
from ui.serving.errors import report_error
from ui.serving.runs import RunHistory
from ui.serving.session import FineTuneRecord, Session
from ui.serving.studio import Studio
from ui.tabs.finetune.scoring import Scoring, scoring

logger = logging.getLogger(__name__)

def figures(history: RunHistory, new_evaluation: bool = True, scored: Scoring = Scoring()) -> dict[str, Any]:
    """The loss figure, and the alignment-uniformity and STS figures when an evaluation came since the last.

    Building a figure costs about 12 ms of Python here; the streaming loop leaves the CPU to training and to
    other visitors.
    """
    shown = {"loss_plot": plots.loss_curve(history.steps, history.losses, history.chance) if history.steps
             else plots.placeholder("The loss appears after the first step.", height=plots.CHART_HEIGHT)}
    if new_evaluation:
        waiting = plots.placeholder("Measuring the starting point…", height=plots.CHART_HEIGHT)
        shown["au_plot"] = plots.alignment_uniformity(history.eval_steps, history.uniformity, history.alignment) \
            if history.eval_steps else waiting
        shown["sts_plot"] = plots.sts_curve(history.eval_steps, history.spearman, history.eval_name,
                                            scored.references) if history.eval_steps else waiting
    return shown


def status_line(event, history: RunHistory, running: bool, scored: Scoring = Scoring(), replayed: bool = False
                ) -> str:
    """The status markdown: steps done, time left, Spearman before → now (a replay says so, with the times it
    measured when it trained)."""
    doing = "Replaying…" if replayed else "Training…"
    parts = [f"**{doing if running else 'Finished'}** step {event.step} / {event.total_steps}",
             f"{event.elapsed_s:.0f} s {'elapsed when it trained' if replayed else 'elapsed'}"]
    if running and event.remaining_s is not None and not replayed:
        parts.append(f"about {event.remaining_s:.0f} s left")
    line = " · ".join(parts)
    if history.spearman:
        first, last = history.spearman[0], history.spearman[-1]
        line += (f" · STS Spearman on {history.eval_name}: **{first:.1f} → {last:.1f}** "
                 f"({last - first:+.1f}, measured at step {history.eval_steps[-1]})")
    if history.losses:
        line += f" · loss {history.losses[-1]:.3f}"
    if history.spearman and scored.note:  # its own paragraph: presenter mode hides it (the STS chart's lines)
        line += f"\n\n{scored.note}"
    return line


def done_message(record: FineTuneRecord | None, reason: str, dropped: tuple[FineTuneRecord, ...] = (),
                 cap: int = 0, scored: Scoring = Scoring(), park_s: float = 600.0) -> str:
    if record is None:
        return f"{reason} before the first step finished; nothing was trained."
    gain = ""
    if record.spearman_before is not None and record.spearman_after is not None:
        gain = (f" STS Spearman on {record.eval_name}: **{record.spearman_before:.1f} → "
                f"{record.spearman_after:.1f}** ({record.spearman_after - record.spearman_before:+.1f})."
                + (f"\n\n{scored.note}" if scored.note else ""))
    notice = "".join(f"\n\nThe oldest run, **{old.label}**, was removed: a session keeps at most "
                     f"{cap} runs (delete runs you no longer need with **Delete run**)." for old in dropped)
    return (f"**{reason}** — {record.summary}.{gain}\n\nKept as **{record.label}** in the model picker at the "
            "top. **The tabs still use the model you picked**; to use this run in every tab, pick it there. "
            "Retrieval, Embedding map, Evaluate and the cone compare your latest run with its starting model "
            "either way. Earlier runs stay in the picker until you delete them. The shared model was not "
            f"changed.{notice}\n\n⚠️ {text.runs_live_in_this_tab(park_s)}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _buttons(running: bool) -> dict[str, Any]:
    return {"start": gr.update(interactive=not running), "stop": gr.update(interactive=running)}


def finished(studio: Studio, session: Session, message: str, record: FineTuneRecord | None) -> dict[str, Any]:
    """What the tab shows after a run: the message, the downloads, the picker with the run selected."""
    shown = {"status": message, "session": session, **_buttons(running=False)}
    if record is None:
        return {**shown, "model_file": None, "emb_file": None}
    # The run joins the picker's choices; which model every tab uses stays the visitor's choice.
    return {**shown, "model_file": record.model_zip, "emb_file": record.embeddings_npy,
            "picker": gr.update(choices=studio.config.model_choices(session.run_labels()))}


def shown(studio: Studio, session: Session, update: runs.RunUpdate, job: runs.FinetuneJob | None = None
          ) -> dict[str, Any] | None:
    """What the tab shows for one update of ``job``'s run (None: nothing changes on screen)."""
    scored = Scoring()
    if job is not None and isinstance(update, runs.Started | runs.Progress | runs.Remeasured | runs.Finished):
        eval_name = update.eval_name if isinstance(update, runs.Started) else update.history.eval_name
        scored = scoring(job, eval_name)
    match update:
        case runs.Waiting(position, eta_s, training, waiting):
            status = (f"**Waiting for a training slot**: you are **number {position}** in line ({training} "
                      f"run{'s' if training != 1 else ''} training, {waiting} waiting). Estimated start: within "
                      f"**{_duration(eta_s)}** (if every run ahead uses its whole time budget). Press **Stop** to "
                      "leave the queue; the other tabs work meanwhile.")
            return {"status": status, "session": session, **_buttons(running=True)}
        case runs.LeftQueue(kept):
            earlier = f" Your earlier runs are kept: {', '.join(kept)}." if kept else ""
            return {"status": f"You left the training queue. Nothing was trained.{earlier}", "session": session,
                    **_buttons(running=False)}
        case runs.Started(title, eval_name, data, replay_of):
            origin = f" from `{job.base_name}`" if job is not None else ""
            if replay_of is not None:
                return {"status": text.replay_started(title, origin, replay_of), **figures(RunHistory(eval_name)),
                        "session": session, **_buttons(running=True)}
            return {"status": f"**Starting {title}{origin}…** measuring the model before training on {eval_name} "
                              f"({data}).",
                    **figures(RunHistory(eval_name)), "session": session, **_buttons(running=True)}
        case runs.Progress(event, history, new_evaluation, replayed):
            return {"status": status_line(event, history, running=not event.done, scored=scored, replayed=replayed),
                    **figures(history, new_evaluation, scored), "session": session}
        case runs.Problem(error, where):
            report_error(error, where)
            return None
        case runs.Remeasured(step, history):
            return {"status": f"Re-measured the model kept at step {step} on {history.eval_name}.",
                    **figures(history, scored=scored), "session": session}
        case runs.Packaging(record):
            return {"status": f"**Packaging** the model and the corpus embeddings for download… ({record.summary})",
                    "session": session}
        case runs.Finished(reason, record, dropped, _):
            message = done_message(record, reason, dropped, studio.config.max_runs, scored, studio.people.park_s)
            return finished(studio, session, message, record)
    raise TypeError(f"unknown run update {update!r}")


