"""The Ablations panel: a preset trains a private copy of the raw model for a few minutes (a
:class:`ui.serving.runs.PresetJob` of the run lifecycle the Fine-tune tab uses too), drawn on the
alignment-uniformity plane and set against the paper's row, each row against its table's default."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from simcse_core.evaluation import paper
from simcse_core.teaching import ablations, lessons, paper_rows
from ui.present import plots
from ui.present.text import SCALE_NAME, trained_at_scale
from ui.serving import runs
from ui.serving.errors import check_choice, guarded, report_error
from ui.serving.server import client_address
from ui.serving.session import Session
from ui.serving.studio import Studio

PRESET_CHOICES = [(f"{p.paper_source} · {p.label}", p.key) for p in ablations.PRESETS]
PAPER_NOTE = ("Paper figures: STS-B development set, BERT-base trained for one epoch on 10⁶ Wikipedia sentences "
              f"(unsupervised) or three on SNLI+MNLI, {paper.NLI_PAIRS} pairs in the paper's count (supervised; the "
              f"official training file has {paper_rows.OFFICIAL_NLI_TRIPLETS:,} triplets).")
START_NOTE = (f"Ours: every preset trains a private copy of `{ablations.START_MODEL}`, whatever model is picked at "
              "the top, and scores it through its row's pooler from the start (the setting column names it; the "
              "plane labels each start point).")
SCALE_COLUMN = f"Trained at scale ({SCALE_NAME}, full dev)"
MEASURED_COLUMN = "Ours, measured (full dev, seeds' mean ± SD)"
RUN_COLUMNS = ("Ours: start → end", "Row against its table's default: paper · ours", "Steps", SCALE_COLUMN)
TABLE_COLUMNS = ("Table", "Row", "Setting: paper · ours", "Paper STS-B dev", MEASURED_COLUMN, *RUN_COLUMNS)
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


def measured_runs() -> dict:
    """The project's stored measurement of each preset (key -> AblationResult), read again only when the files
    in bench/results change: the table is drawn at every update of a preset run."""
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in ablations.MEASURED_DIR.glob("ablations_*.json")))
    return _measured_runs(ablations.MEASURED_DIR, stamp)


@functools.lru_cache(maxsize=2)
def _measured_runs(directory, stamp: tuple) -> dict:
    return {r.key: r for group in ablations.GROUPS for r in ablations.measured_results(group, directory)}


def paper_table(results: list) -> pd.DataFrame:
    """Every preset with the paper's row, its setting beside ours, the project's measured figure beside the paper's,
    and this visitor's run where they ran it, set against its table's default in the paper and in ours. The run
    columns are left out until the visitor has a run, so the table fits a screen."""
    ours = {r.key: r for r in results}
    compared = {c.row: c for c in ablations.comparisons(results)}
    measured = measured_runs()
    rows = []
    for preset in ablations.PRESETS:
        result = ours.get(preset.key)
        rows.append(dict(zip(TABLE_COLUMNS, (
            preset.paper.table, preset.label,
            f"paper: {ablations.paper_setting(preset)} · ours: {ablations.our_setting(preset)}{_flags(preset)}",
            _paper_cell(preset),
            measured[preset.key].final_said if preset.key in measured else "not measured for this raw model yet",
            "" if result is None else f"{result.before['spearman']:.1f} → {result.after['spearman']:.1f}",
            _against_default(preset, result, compared.get(preset.label)),
            "" if result is None else result.steps,
            "" if result is None else f"{lessons.TRAINED_AT_SCALE.stsb_dev:.1f}",
        ), strict=True)))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table if results else table.drop(columns=list(RUN_COLUMNS))


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
    same = ("the same row" if verdict["same_best"] else "different rows within the seeds' spread"
            if verdict.get("best_tied") else "**not the same row**")
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
            all_agree &= bool(verdict["same_best"] or verdict.get("best_tied")) and all(
                c.verdict == "agrees" for c in items)
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
