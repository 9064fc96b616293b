"""The Inside the loss panel: a batch's two views encoded once, then the cosine matrix, each row's softmax and
loss at any temperature τ and hard-negative weight α (re-scored without encoding again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simcse_core.limits import LIMITS
from simcse_core.paths import ASSETS_DIR
from ui.present import plots
from ui.serving.config import START_RAW
from ui.serving.errors import InputError, check_choice, check_lines, guarded
from ui.serving.session import Session
from ui.serving.studio import Studio
from ui.tabs.inside.inputs import check_setting

LOSS_SENTENCES = "\n".join([
    "A man is playing a guitar.", "Someone is playing an acoustic guitar.", "The stock market fell sharply today.",
    "A dog is running in the park.", "My grandmother bakes bread every Sunday.", "The rocket launched at dawn.",
    "I forgot my password again.", "It will rain all weekend.",
])
MODES = [("Unsupervised: each sentence and its dropout twin", "unsup"),
         ("Supervised: anchor | positive | hard negative", "sup")]


def parse_batch(text: str, mode: str) -> list:
    """The loss panel's batch: sentences (unsup) or ``anchor | positive | hard negative`` rows (sup)."""
    from simcse_core.teaching.mechanisms import MAX_BATCH, MIN_BATCH

    mode = check_choice(mode, "Batch mode", [value for _, value in MODES])
    lines = check_lines(text, "Batch", MIN_BATCH, MAX_BATCH, parts=1 if mode == "unsup" else LIMITS.row_parts)
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

    return "\n".join(" | ".join(t) for t in load_triplets(ASSETS_DIR / "sample_sup.csv")[:n])


def loss_outputs(session: Session, temperature: float, alpha: float) -> dict[str, Any]:
    """The loss panel's summary and figure for the session's encoded batch at ``temperature`` and ``alpha``."""
    from simcse_core.teaching.mechanisms import anatomy_of
    from simcse_core.training.losses import simcse_loss

    views = session.loss_views
    if views is None:
        raise InputError("Press “Encode the batch” first.")
    temperature = check_setting(temperature, "temperature", "Temperature τ")
    alpha = check_setting(alpha, "hard_negative_weight", "α (hard negatives)")
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
    dropout = check_setting(form.dropout, "dropout", "Dropout rate")
    encoder = studio.start_encoder(form.start, form.choice, form.pooler, session)
    session.set_loss_views(dropout_views(encoder, batch, dropout=float(dropout)))
    return {**loss_outputs(session, form.temperature, form.alpha), "session": session}


@guarded
def rescore(temperature: float, alpha: float, session: Session) -> dict:
    """Handler for the τ and α sliders: the same vectors, a new softmax (no encoding). Before the batch is
    encoded there is nothing to rescore: the summary says what to press, and nothing else changes."""
    if session.loss_views is None:
        temperature = check_setting(temperature, "temperature", "Temperature τ")
        alpha = check_setting(alpha, "hard_negative_weight", "α (hard negatives)")
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
