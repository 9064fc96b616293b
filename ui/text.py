"""Every sentence the app shows a user: header, explanations, tooltips, table notes. Kept in one place."""

from __future__ import annotations

from simcse_core.pooling import POOLER_HELP

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

**Why it works** (paper, Section 5): the numerator pulls positives together (*alignment*, lower is better);
the denominator pushes all sentences apart (*uniformity*, lower is better). Pre-trained encoders squeeze every
sentence into a narrow cone (*anisotropy*: any two sentences look similar); SimCSE spreads them out while
keeping paraphrases close. Watch both numbers move in the **Fine-tune** and **Embedding map** tabs.

**The paper's settings** (BERT-base):

| Setting | Unsupervised | Supervised |
|---|---|---|
| Training data | 10⁶ Wikipedia sentences | 275k NLI triplets (SNLI + MNLI) |
| Batch size | 64 | 512 |
| Learning rate | 3e-5 | 5e-5 |
| Temperature τ | 0.05 | 0.05 |
| Dropout | 0.1 (the model's own) | 0.1 |
| Max length | 32 tokens | 32 tokens |
| Pooler | [CLS] + MLP in training only | [CLS] + MLP |
| Training length | 1 epoch | 3 epochs |
| STS-B test (Spearman × 100) | 76.85 | 84.25 |
"""

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]

MODEL_PICKER_INFO = "Used by every tab. Type a Hugging Face id or a local folder to load another model."
POOLER_PICKER_INFO = "How the token vectors become one sentence vector (see “How it works”)."


# Short dropdown labels (the full descriptions are simcse_core.pooling.POOLER_HELP).
POOLER_LABELS = {
    "cls": "cls — [CLS] + MLP head (paper)",
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
    "Type two sentences to see how close the model thinks they are, or a list of sentences to compare all "
    "of them at once. Cosine similarity runs from −1 to 1; higher means closer in meaning."
)
# Bands for the plain-language reading, on the *calibrated* score (see ui.similarity.read_score).
SCORE_BANDS: tuple[tuple[float, str], ...] = (
    (0.85, "nearly identical: these say the same thing"),
    (0.70, "very similar: these say nearly the same thing"),
    (0.50, "similar: closely related meaning"),
    (0.30, "somewhat related: same topic, different point"),
    (0.15, "loosely related"),
    (float("-inf"), "unrelated"),
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
COMPARE_LEGEND = (
    "**Base vs fine-tuned** — base: `{base}`; fine-tuned: your run ({summary}). *Move* is how each "
    "fine-tuned hit's rank changed: ↑ up, ↓ down, = same, *new* = not in the base model's top {k}."
)

# --- Fine-tune --------------------------------------------------------------------------------------------
FINETUNE_INTRO = (
    "Train a private copy of the model with the SimCSE loss and watch it learn. The default run starts from "
    "the bundled model's raw [CLS] vector — its sentences crowd into a narrow cone (anisotropy) — and within "
    "about a minute on a laptop CPU spreads them out and raises its STS score. The shared model is never "
    "changed; Stop keeps what was trained so far."
)
SAMPLE_UNSUP = "Sample sentences (unsupervised)"
SAMPLE_SUP = "Sample NLI triplets (supervised)"
UPLOAD_TRAINING = "Upload my own"
TIP_MODE = ("Unsupervised: one sentence per example, dropout makes the positive. Supervised: pairs "
            "(anchor, positive) or triplets with a hard negative. Set from your data.")
TIP_STEPS = "Optimizer updates; the time budget may end the run first. Paper: ~15k."
TIP_BATCH = "The rest of the batch are the negatives. Paper: 64 unsup, 512 sup."
TIP_LR = "AdamW peak rate, decaying to 0. Paper: 3e-5 unsup, 5e-5 sup."
TIP_TEMPERATURE = "τ in the loss; smaller sharpens the softmax. Paper: 0.05 (a scale of 1/τ = 20)."
TIP_DROPOUT = "Makes the two views differ. Paper: 0.1; at 0 unsupervised SimCSE collapses."
TIP_POOLER = "The sentence vector to train and use. Default: raw [CLS] (anisotropic before training)."
TIP_MAXLEN = "Tokens per sentence; longer ones are cut. Paper: 32."
TIP_BUDGET = "Stop after this many seconds, evaluations included."

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
    "Alignment and uniformity (lower is better) are the paper's Section 5 diagnostics; anisotropy is the "
    "mean cosine of two random sentences (near 0 is best)."
)
EVAL_UPLOAD = "Upload scored pairs (sentence1, sentence2, score)"
PAPER_REFERENCE = """
**Reference — the paper's Table 5** (STS-B test, Spearman × 100, BERT-base):
unsupervised SimCSE **76.85**, supervised SimCSE **84.25**.

What differs here: the encoder is all-MiniLM-L6-v2 (6 layers, 22M parameters, already trained for sentence
similarity — not raw BERT-base with 110M), the training data are small samples (not 10⁶ Wikipedia sentences or
275k NLI triplets), runs last seconds to minutes on a CPU instead of an epoch on GPUs, and the default run
starts from the model's raw [CLS] vector. Numbers here show the *direction* of the effect, not the paper's
results.
"""
DEMO_SET_NOTE = "demo, not a benchmark"

APOLOGY = "Sorry — something went wrong on our side. The details are in the server log; please try again."
