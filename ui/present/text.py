"""Every sentence the app shows a user: header, explanations, tooltips, table notes. Kept in one place."""

from __future__ import annotations

from simcse_core.evaluation import paper
from simcse_core.evaluation.paper import NLI_PAIRS, OFFICIAL_POOLER_NAMES, QUOTES, STSB_DEV, table5_markdown
from simcse_core.model.catalogue import MODEL_DESCRIPTIONS
from simcse_core.model.pooling import POOLER_HELP
from simcse_core.teaching import ablations, lessons, paper_rows
from simcse_core.training.config import setting_default

TITLE = "SimCSE Studio"

HEADER = """
# SimCSE Studio
**SimCSE** turns each sentence into a vector, so that sentences that mean the same thing point the same way.
Its trick (Gao, Yao & Chen, EMNLP 2021) is tiny: pass the *same* sentence through the encoder twice — dropout
makes the two vectors slightly different — and train the model to pick out its own twin among the other
sentences in the batch. With labelled pairs (entailment = positive, contradiction = hard negative) the same
loss gives supervised SimCSE.
"""

HOW_IT_WORKS = r"""
**The loss.** For a batch of \(N\) sentences, let \(h_i\) and \(h_i^+\) be two vectors of sentence \(i\)
(unsupervised: two dropout passes of the same sentence; supervised: the sentence and its entailed partner),
\(\mathrm{sim}\) the cosine similarity and \(\tau\) the temperature:

$$\ell_i = -\log \frac{e^{\mathrm{sim}(h_i,\,h_i^+)/\tau}}
{\sum_{j=1}^{N} e^{\mathrm{sim}(h_i,\,h_j^+)/\tau}}$$

Supervised SimCSE adds a hard negative \(h_j^-\) (a contradiction) to each denominator:

$$\ell_i = -\log \frac{e^{\mathrm{sim}(h_i,\,h_i^+)/\tau}}{\sum_{j=1}^{N}
\left(e^{\mathrm{sim}(h_i,\,h_j^+)/\tau} + e^{\mathrm{sim}(h_i,\,h_j^-)/\tau}\right)}$$

(sentence-transformers calls this MultipleNegativesRankingLoss with `scale` \(= 1/\tau\) = 20.)

**Why it works**: the numerator pulls positives together (*alignment*, lower is better); the denominator
pushes all sentences apart (*uniformity*, lower is better). Both are defined in the paper's background section
(Section 2, after Wang & Isola 2020) and plotted in its Figures 2 and 3. Pre-trained language models such as
BERT-base (the paper's Section 5) and our raw-bert (mean cosine RAW_CONE) squeeze every sentence into a narrow
cone (*anisotropy*: any two sentences look similar); in the paper,
SimCSE spreads them out while keeping paraphrases close. MINIATURE_DIRECTION Watch both numbers move in the
**Fine-tune** and **Embedding map** tabs.

**Poolers: from token vectors to one sentence vector.** The encoder gives one vector per word piece; the
*pooler* turns them into the sentence vector (the official SimCSE code's `--pooler_type` name in brackets):

POOLER_TABLE

**The paper's settings** (BERT-base):

| Setting | Unsupervised | Supervised |
|---|---|---|
| Training data | 10⁶ Wikipedia sentences | SNLI + MNLI: NLI_PAIRS pairs (§6.1; the official file: NLI_FILE triplets) |
| Batch size (Table A.1) | UNSUP_BATCH | SUP_BATCH |
| Learning rate (Table A.1) | UNSUP_LR | SUP_LR |
| Temperature τ | 0.05 (the official scripts) | 0.05 (Table D.1's best; D.1 states no setting) |
| Dropout | 0.1 (the model's own) | 0.1 |
| Max length | 32 tokens (the official scripts; the paper's text gives none) | 32 tokens (the same) |
| Evaluation | STS-B dev every 250 steps, the best kept (Appendix A; the official scripts: every 125) | the same |
| Pooler | [CLS] + MLP in training only | [CLS] + MLP |
| Training length | 1 epoch | 3 epochs |
| STS-B test (Spearman × 100, Table 5) | UNSUP_TEST | SUP_TEST |
"""


def _pooler_table() -> str:
    rows = [f"- `{name}` [`{OFFICIAL_POOLER_NAMES[name]}`]: {help_}." for name, help_ in POOLER_HELP.items()]
    rows.append("- The MLP head of `cls` is a dense layer + tanh. In unsupervised SimCSE it is used in training only "
                "(the test vector is the raw [CLS]); in supervised SimCSE it is kept at test time. For a model "
                "not trained here, it is the checkpoint's own pooler layer when the checkpoint has one (BERT "
                "models do: where the official SimCSE models keep their MLP).")
    return "\n".join(rows)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def miniature_direction() -> str:
    """Where our miniature's direction can differ from the paper's, from what was measured here: the lesson run's
    alignment (:data:`simcse_core.teaching.lessons.MEASURED`) and the ablation tables whose best row is not the
    paper's (bench/results/ablations_*.json)."""
    m = lessons.MEASURED
    said = []
    if m.after_alignment > m.start_alignment:
        said.append(f"the lesson run's alignment rises ({m.start_alignment:.2f} → {m.after_alignment:.2f}) where "
                    "BERT-base's stays steady (Figure 2)")
    best = ablations.best_rows()
    if best["differs"]:
        many = len(best["differs"]) > 1
        said.append(f"the best row{'s' if many else ''} of {_and(best['differs'])} (the ablations in miniature, "
                    f"measured with several seeds) {'are' if many else 'is'} not the paper's")
    agree = []
    if best["same"]:
        many = len(best["same"]) > 1
        agree.append(f"the best row{'s' if many else ''} of {_and(best['same'])} {'are' if many else 'is'} the "
                     "paper's")
    if best["tied"]:
        agree.append(f"in {_and(best['tied'])} our best row and the paper's are within the seeds' spread")
    found = f": {'; '.join(said)}" if said else ""
    found += f" ({'; '.join(agree)})" if agree else ""
    return (f"Our small raw model is a miniature, and its direction can differ from the paper's{found}. Inside "
            "SimCSE → Ablations sets each row beside the paper's, agreements and disagreements both.")


HOW_IT_WORKS = (HOW_IT_WORKS.replace("POOLER_TABLE", _pooler_table()).replace("NLI_PAIRS", NLI_PAIRS)
                .replace("NLI_FILE", f"{paper_rows.OFFICIAL_NLI_TRIPLETS:,}")
                .replace("UNSUP_BATCH", str(paper.TABLE_A1_BERT_BASE["unsup"][0]))
                .replace("SUP_BATCH", str(paper.TABLE_A1_BERT_BASE["sup"][0]))
                .replace("UNSUP_LR", paper_rows.fmt(paper.TABLE_A1_BERT_BASE["unsup"][1]))
                .replace("SUP_LR", paper_rows.fmt(paper.TABLE_A1_BERT_BASE["sup"][1]))
                .replace("UNSUP_TEST", f"{paper.STSB_TEST['unsup']:.2f}")
                .replace("SUP_TEST", f"{paper.STSB_TEST['sup']:.2f}")
                .replace("RAW_CONE", f"{lessons.MEASURED.start_anisotropy:.2f}")
                .replace("MINIATURE_DIRECTION", miniature_direction()))

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]

MODEL_PICKER_INFO = ("Used by Similarity, Retrieval, Embedding map and Evaluate; Inside SimCSE and Fine-tune start "
                     f"from {lessons.START_MODEL} unless you switch their “Start from”. Type a Hugging Face id or a "
                     "local folder to load another model.")
POOLER_PICKER_INFO = "How the token vectors become one sentence vector (explained under “How it works”)."


# Short dropdown labels (the full descriptions are simcse_core.model.pooling.POOLER_HELP).
POOLER_LABELS = {
    "cls": "cls — [CLS] + MLP head (the paper's default)",
    "cls_before_pooler": "cls_before_pooler — raw [CLS]",
    "mean": "mean — average of token vectors",
    "avg_first_last": "avg_first_last — first + last layer",
    "avg_top2": "avg_top2 — last two layers",
}


def pooler_choices() -> list[tuple[str, str]]:
    """Dropdown choices ``(label, value)`` with a short description of each pooler."""
    return [(POOLER_LABELS.get(name, name), name) for name in POOLER_HELP]


# --- Similarity -------------------------------------------------------------------------------------------
SIMILARITY_INTRO = (
    "Type two sentences to see how close this model places them, or a list of sentences to compare all of "
    "them at once. The number is the **cosine** of the angle between the two sentence vectors (from −1 to 1; "
    "higher = closer). Closeness here means *as this model sees it*: shared topic and wording count as much "
    "as meaning."
)
# Bands for the plain-language reading, on the *calibrated* score (see ui.tabs.similarity.calibrate). They describe
# what the number measures (closeness in this model's space), never a claim that the meanings are the same.
SCORE_BANDS: tuple[tuple[float, str], ...] = (
    (0.85, "very close in this model's space (topic and wording nearly the same)"),
    (0.70, "close: same topic, much shared content"),
    (0.50, "related: overlapping topic or wording"),
    (0.30, "somewhat related: a shared topic"),
    (0.15, "loosely related"),
    (float("-inf"), "not related, as far as this model can tell"),
)
WHAT_COSINE_MEASURES = (
    "Cosine measures closeness of topic and wording as this model sees it, not agreement: opposites "
    "(“fantastic” / “terrible”), negations (“not”) and swapped roles (“the dog bit the man”) usually score high, "
    "because they share a topic and most words. Try the hard cases below."
)
NO_VERDICT = "no reading: the model cannot read these sentences"
BOTH_UNKNOWN = (
    "{shown} are both unknown to this model: its vocabulary has no piece for them, so it reads each as the "
    "same “unknown” token ([UNK]). Their vectors are alike whatever they mean — this score says nothing "
    "about them."
)
ONE_UNKNOWN = (
    "{name} is mostly unknown to this model ({shown} read as the “unknown” token [UNK]): the score cannot say "
    "much about it."
)
SOME_UNKNOWN = (
    "In {name}, {shown} {verb} unknown to this model (read as [UNK]); the rest was read with pieces it knows."
)
TRUNCATED = (
    "{name} is longer than this model reads: {kept} of its {tokens} word pieces were used; the end "
    "(“{cut}”) was not read."
)
SCORE_NOTE = (
    "Cosine ranges depend on the model: a model whose vectors crowd into a narrow cone scores *every* pair "
    "high. The reading corrects for this by comparing with the average similarity of two random sentences "
    "from the bundled corpus for this model ({baseline:.2f}). Compare scores from the same model only."
)
SCORE_NOTE_NO_BASELINE = (
    "Cosine ranges depend on the model and pooler, so compare scores from the same model only."
)

# --- Retrieval --------------------------------------------------------------------------------------------
RETRIEVAL_INTRO = (
    "Semantic search: every corpus sentence is encoded once into an index; a query is encoded and compared "
    "with all of them. After a fine-tune, the second table shows how the ranking changed."
)
BUNDLED_CORPUS = "Bundled corpus"
UPLOAD_CORPUS = "Upload my own (.txt, .csv, .tsv, .jsonl)"
COMPARE_HINT = "Fine-tune a model in the **Fine-tune** tab to compare base and fine-tuned results here."
# Shown before the first search or map of a page: true whether or not the visitor has a run yet.
COMPARE_WHEN_RUN = ("Each search compares the picked model with your latest run, once you have one (**Fine-tune** "
                    "tab): its hits appear side by side here.")
MAP_BEFORE_DRAWING = ("Press **Draw the map**: the picked model's map, or — once you have a run (**Fine-tune** tab) — "
                      "before and after your latest run, in one shared space.")

# --- Fine-tune --------------------------------------------------------------------------------------------


SCALE_NAME = lessons.TRAINED_AT_SCALE.label.partition(" (")[0]  # the model's name, without its note


def trained_at_scale(short: bool = False) -> str:
    """MiniLM's reference figure (:data:`simcse_core.teaching.lessons.TRAINED_AT_SCALE`), shown beside a raw-start
    run's score."""
    ref = lessons.TRAINED_AT_SCALE
    if short:
        return f"{SCALE_NAME}, {ref.stsb_dev:.1f} on the full STS-B dev set"
    return (f"{ref.label} reads {ref.stsb_dev:.1f} on the full STS-B dev set ({ref.stsb_test:.1f} on STS-B test) "
            f"through its `{ref.pooler}` pooler.")


def lesson_run_measured() -> str:
    """What the lesson's one-minute run did on the project's machine, from
    :data:`simcse_core.teaching.lessons.MEASURED` (never typed here)."""
    m = lessons.MEASURED
    if not (m.start_dev or m.after_dev):
        return f"(The lesson run's figures are not measured yet: {m.source}.)"
    return (f"On the project's machine the lesson run went **{m.start_dev:.1f} → {m.after_dev:.1f}** on STS-B dev "
            f"({m.start_test:.1f} → {m.after_test:.1f} on test) and the mean cosine of two sentences "
            f"{m.start_anisotropy:.2f} → {m.after_anisotropy:.2f}, in {m.train_s:.0f} s of training ({m.source}).")


def pooler_said(config) -> str:
    """How a run of ``config`` reads its sentence vector, in words (the [CLS] MLP's use included)."""
    if config.pooler == "cls":
        return ("[CLS] with the MLP in training only (the paper's unsupervised setting)"
                if config.resolved_mlp_only_train else "[CLS] with the MLP")
    if config.pooler == "cls_before_pooler":
        return "the raw [CLS] vector, without the MLP"
    if config.pooler == "avg_first_last":
        return "the first-last average (the mean of the first and last layers' word pieces; Table 6's row)"
    return f"the `{config.pooler}` pooler"


def settings_said(config) -> str:
    """A run's settings in one phrase, every value read from ``config``."""
    schedule = schedule_said(config)
    return (f"{pooler_said(config)}, τ {config.temperature:g}, dropout {config.dropout:g}, batch "
            f"{config.batch_size}, max length {config.max_length}, learning rate {config.lr:g}"
            + (f" {schedule}" if schedule else ""))


def schedule_said(config) -> str:
    """How a run's learning rate moves and AdamW's β₂, where either differs from the paper's ("" where neither
    does): the paper's trainer decays the rate linearly from the first step, with β₂ 0.999."""
    parts = []
    if config.decay_fraction < 1:
        parts.append(f"held for the first {1 - config.decay_fraction:.0%} of the steps, then decayed linearly to 0 "
                     "(the paper: decayed from the first step)")
    paper_beta2 = setting_default("adam_beta2")
    if config.adam_beta2 != paper_beta2:
        parts.append(f"AdamW β₂ {config.adam_beta2:g} (the paper: {paper_beta2:g})")
    return ", ".join(parts)


FINETUNE_INTRO = (
    "Train a private copy of a model with the SimCSE loss and watch it learn. The default run starts where the "
    "paper starts, from a language model that never learned sentence meaning — "
    f"{MODEL_DESCRIPTIONS[lessons.START_MODEL]} — with the lesson's settings ({settings_said(lessons.LESSON_RUN)}), "
    f"on the lesson's sentences (no STS data). {lessons.RECIPE_WHY} Its vectors start "
    "weak for similarity and crowded into a narrow cone (anisotropy); dropout alone — each sentence twice — "
    f"spreads them out and raises the STS score. {lesson_run_measured()} For scale: {trained_at_scale()}\n\n"
    "**Start from** switches to the model picked at the top (all-MiniLM-L6-v2 by default, already trained for "
    "similarity, so there SimCSE polishes rather than teaches), and the settings switch to that start's defaults. "
    "The shared models are never changed; Stop keeps what was trained so far."
)
LESSON_DATA = "Lesson sentences (unsupervised, no STS data)"
SAMPLE_UNSUP = "Sample sentences (unsupervised)"
SAMPLE_SUP = "Hand-written triplets (supervised; not the paper's NLI data)"
UPLOAD_TRAINING = "Upload my own"
TIP_MODE = ("Unsupervised: one sentence per example, dropout makes the positive. Supervised: pairs "
            "(anchor, positive) or triplets with a hard negative. Set from your data.")
_A1 = paper.TABLE_A1_BERT_BASE
TIP_STEPS = (f"Optimizer updates; the time budget may end the run first. Paper (BERT-base): "
             f"{paper_rows.PAPER_LENGTH['unsup']} of 10⁶ sentences at batch {_A1['unsup'][0]} (unsup); "
             f"{paper_rows.PAPER_LENGTH['sup']} at batch {_A1['sup'][0]} (sup; the paper counts {NLI_PAIRS} "
             "NLI pairs).")
TIP_BATCH = (f"The rest of the batch are the negatives. Paper (Table A.1, BERT-base): {_A1['unsup'][0]} unsup, "
             f"{_A1['sup'][0]} sup, from a grid of 64-512 chosen on STS-B dev.")
_HELD = 1 - lessons.LESSON_RUN.decay_fraction
TIP_LR = ("AdamW peak rate. The paper's trainer decays it linearly to 0 from the first step"
          + (f"; from {lessons.START_MODEL} the lesson holds it for the first {_HELD:.0%} of the steps, then decays "
             "it" if _HELD else "") +
          f". Paper (Table A.1, BERT-base): {paper_rows.fmt(_A1['unsup'][1])} unsup, "
          f"{paper_rows.fmt(_A1['sup'][1])} sup.")
TIP_TEMPERATURE = "τ in the loss; smaller sharpens the softmax. Paper: 0.05 (a scale of 1/τ = 20)."
TIP_DROPOUT = ("Makes the two views differ. Paper (Table 3, unsupervised, STS-B dev): 0.1 → "
               f"{paper.TABLE3['p = 0.1'].value:.1f}; no dropout → {paper.TABLE3['p = 0.0'].value:.1f}; the same "
               f"mask for both views → {paper.TABLE3['Fixed 0.1'].value:.1f}.")
TIP_POOLER = ("The sentence vector to train. Paper (unsupervised): [CLS] with the MLP in training only. Each start "
              "brings its own default (see “Start from”).")
TIP_MAXLEN = ("Tokens per sentence in training; longer ones are cut. The official SimCSE scripts: 32 (the paper's "
              "text gives none). Encoding afterwards reads whole sentences (up to the model's own limit).")
TIP_BUDGET = "Stop after this many seconds, evaluations included."

def _au_note() -> str:
    """Figure 2's note: the paper's sentence, then what the lesson run measured (the direction read from
    :data:`simcse_core.teaching.lessons.MEASURED`, never assumed)."""
    m = lessons.MEASURED
    measured = f"the lesson run: STS-B dev pairs' alignment {m.start_alignment:.2f} → {m.after_alignment:.2f}"
    if m.after_alignment > m.start_alignment:
        ours = (f"Our small raw model does not keep it steady: uniformity improves a lot (the point moves left) "
                f"while alignment rises ({measured}). In the raw model's cone every two sentences are close, so "
                "alignment starts trivially small; spreading the sentences apart moves paraphrases apart too. Why "
                "BERT-base keeps it steady and this model does not is not measured here (our guess: a model this "
                "small keeps less of a paraphrase's shared meaning).")
    else:
        ours = f"Our small raw model: alignment does not rise ({measured}), as in the paper."
    return ("<small>Lower is better on both axes. The paper (Section 3, Figure 2), for BERT-base: “"
            f"{QUOTES['figure2_alignment'].text}” {ours}</small>")


AU_NOTE = _au_note()

# --- Embedding map ----------------------------------------------------------------------------------------
MAP_INTRO = (
    "Each dot is a corpus sentence, placed by UMAP so that close vectors land close together. Before and "
    "after fine-tuning share one 2-D space, so positions can be compared. The histogram shows all pairwise "
    "cosines: a narrow bump far from 0 is the anisotropy SimCSE removes."
)
MAP_NO_FINETUNE = (
    "Showing the base model only. Run a fine-tune in the **Fine-tune** tab, then come back for the "
    "before/after view."
)

# --- Evaluate ---------------------------------------------------------------------------------------------
EVAL_INTRO = (
    "Semantic textual similarity (STS): human raters scored sentence pairs from 0 (unrelated) to 5 (same "
    "meaning). A good encoder ranks pairs in the same order: Spearman correlation × 100, higher is better. "
    "Alignment and uniformity (lower is better) are defined in the paper's background section and plotted in "
    "its Figures 2 and 3; anisotropy is the mean cosine of two random sentences (near 0 is best)."
)
EVAL_UPLOAD = "Upload scored pairs (sentence1, sentence2, score)"
PAPER_REFERENCE = f"""
**Reference — the paper's Table 5** (STS test sets, Spearman × 100, unsupervised and supervised SimCSE on
BERT-base, the "all" setting):

{table5_markdown()}

On the STS-B *development* set the paper reports {STSB_DEV["unsup"]} (unsupervised, [CLS] w/ MLP (train),
dropout 0.1: Tables 3 and 6) and {STSB_DEV["sup"]} (supervised, [CLS] w/ MLP, contradiction hard negatives at
α = 1: Table 7, also Table 6), both BERT-base. The other STS sets are not shipped offline;
`python -m simcse_core eval` reads them when online.

What differs here: the lessons' runs start from {MODEL_DESCRIPTIONS[lessons.START_MODEL]} — far smaller than
BERT-base — trained on the lesson's sentences (not 10⁶ Wikipedia sentences or the {NLI_PAIRS} NLI pairs) for about a
minute on a CPU instead of an epoch. The model picked at the top is all-MiniLM-L6-v2 by default, a model for real
use, already trained for sentence similarity at scale. Numbers here are never the paper's results: compare
directions and the order of rows, not levels. {miniature_direction()}
"""
DEMO_SET_NOTE = "demo, not a benchmark"

APOLOGY = "Sorry — something went wrong on our side. The details are in the server log; please try again."


def model_shown(choice: str | None, encoder) -> str:
    """The name of the model a panel shows: the visitor's run by its picker label, else the base model."""
    import re

    if choice and re.match(r"^run \d+ ·", choice):
        return f"{choice} [{encoder.config.pooler}]"
    return encoder.description


def length_limit(max_chars: int, what: str = "Up to") -> str:
    """A text box's note of its limit: longer text is refused with a message, never cut."""
    if what == "Up to":
        return f"Up to {max_chars:,} characters; longer text is refused, not cut."
    return f"{what}: up to {max_chars:,} characters; longer text is refused, not cut."


def runs_live_in_this_tab(park_s: float) -> str:
    """Where a visitor's runs live, and how long they outlast a reload or a closed tab."""
    return (f"Your runs live on this server for this browser: after a reload or a closed tab they wait "
            f"**{park_s / 60:.0f} minutes** for you to open the page again, then they are deleted (the browser asks "
            "before you leave). Download a run below to keep it.")

# --- Table 5 in miniature (Evaluate) -----------------------------------------------------------------------

TABLE5_MINIATURE_INTRO = (
    "The paper's Table 5 puts unsupervised SimCSE above every training-free reading of BERT-base (STS-B test: "
    "first-last average, whitening, SimCSE — the paper's figures are in the column “Paper, BERT-base (Table 5 "
    "row)”). Here the same readings "
    "of `raw-bert` — no training at all — sit beside the lesson's one-minute run and the prepared run "
    f"({lessons.PREPARED.recipe()}, trained longer), all scored on the full STS-B sets by `python bench/raw_model.py` "
    "on the project's "
    "2-core machine. Our model is far smaller than BERT-base and saw far less text, so the sizes differ; the "
    "line in bold says which reading wins here. To score your own run, pick it at the top and evaluate it on "
    "STS-B test above."
)


def replay_started(title: str, origin: str, trained_at: str) -> str:
    """The status of a run served as a replay (ui.serving.replays): what it is and why, in one paragraph."""
    return (f"**{title}{origin} is a replay.** This server already trained these exact settings on the same data "
            f"(at {trained_at}); the same settings and seed always give the same weights, so you get that model "
            "and its real measured curve, drawn again in a few seconds, while the training slot stays free for "
            "runs with other settings. Change any setting to train a run of your own.")


def _raw_start_weak(run) -> str:
    """The opening both raw-start notes share: where the run started, and its STS figure when measured."""
    after = (f" (STS Spearman {run.spearman_after:.1f} on {run.eval_name})" if run.spearman_after is not None
             else "")
    return (f"⚠️ This run started from `{lessons.START_MODEL}`, a raw language model, and is still weak after a "
            f"short run{after}")


def _base_model_said() -> str:
    scale = lessons.TRAINED_AT_SCALE
    return f"{scale.label.partition(' (')[0]}, STS-B test {scale.stsb_test:.1f}"


def raw_start_search_note(run) -> str:
    """Why a run from the raw model still searches poorly, and where real search is (Retrieval)."""
    return (f"{_raw_start_weak(run)}: both columns' hits are poor, and what to look at is how the ranking moved. "
            f"For real search, pick the base model at the top — {_base_model_said()} — which this tab then searches "
            "with.")


def raw_start_map_note(run) -> str:
    """Why a run from the raw model still maps poorly, and where a model for real use is (Embedding map)."""
    return (f"{_raw_start_weak(run)}, so its after-map is a weak guide to meaning: look at how the cloud spread out "
            "(the cosine histogram moves left), not at clean clusters. For a map of meaning, pick the base model at "
            f"the top — {_base_model_said()}.")


def twin_gap(twin: float, nearest: float) -> str:
    """The twins panel's comparison of a sentence's twin with its closest *other* sentence, both told with their
    numbers (mean cosines), so "less alike" is never said of 0.88 against 0.81 without the size of the gap."""
    gap = twin - nearest
    if gap > 0:
        return (f"The closest *other* sentence is less alike than the twin: mean cosine {nearest:.2f} against "
                f"{twin:.2f}, {gap:.2f} lower. That is what the loss asks of every sentence — its twin closer than "
                "any other sentence in the batch — and training widens the gap.")
    return (f"The closest *other* sentence is as alike as the twin, or more: mean cosine {nearest:.2f} against "
            f"{twin:.2f}. For this model a twin cannot yet be told from another sentence; that is what training "
            "changes.")
