"""Training runs, for every tab that trains: their updates (:mod:`.updates`), their jobs (:mod:`.jobs`) and
their lifecycle (:mod:`.lifecycle`: admit, wait in the queue, train, re-measure, package, compact, keep).
A tab uses them through this package's names."""
from __future__ import annotations

from ui.serving.runs.jobs import FinetuneJob, Job, PresetJob, Training, expected_seconds, expected_steps
from ui.serving.runs.lifecycle import Admission, package, remeasure, request_stop, run, write_model_zip
from ui.serving.runs.updates import (
    Finished,
    LeftQueue,
    Packaging,
    Problem,
    Progress,
    Remeasured,
    RunHistory,
    RunUpdate,
    Started,
    Waiting,
)

__all__ = ["Admission", "Finished", "FinetuneJob", "Job", "LeftQueue", "Packaging", "PresetJob", "Problem",
           "Progress", "Remeasured", "RunHistory", "RunUpdate", "Started", "Training", "Waiting", "expected_seconds",
           "expected_steps", "package", "remeasure", "request_stop", "run", "write_model_zip"]
