"""Plain-language term cards for readers who do not program: each reads in under a minute.

:func:`cards` renders the cards of a few terms as one small accordion, placed where those terms first appear;
:func:`build` lays out every card (the Glossary panel).
"""

from __future__ import annotations

import gradio as gr

# term -> (title, text). Short sentences, no formulas, one everyday picture each.
TERMS: dict[str, tuple[str, str]] = {
    "cosine": ("Cosine similarity",
               "Each sentence becomes an arrow in a space with hundreds of directions. The cosine measures how "
               "much two arrows point the same way: 1 means exactly the same direction, 0 means unrelated "
               "(at right angles), negative means opposite. Length does not matter, only direction."),
    "dropout": ("Dropout",
                "While a model trains, dropout switches off a random tenth (for a rate of 0.1) of its inner "
                "signals on every pass, a different tenth each time. It stops the model leaning on any single "
                "signal. Side effect SimCSE uses: the same sentence, passed twice, comes out as two slightly "
                "different vectors. When the model is used (evaluation mode), dropout is off."),
    "token": ("Token and [UNK]",
              "Models do not read letters or whole words; they read tokens: common words, or pieces of rarer "
              "words (\"playing\" may be \"play\" + \"##ing\"). Anything the model's vocabulary has no piece "
              "for, such as many emoji, becomes the token [UNK], \"unknown\": the model cannot tell two "
              "unknown things apart."),
    "cls": ("[CLS]",
            "A special token put in front of every sentence. After the model has read the sentence, the "
            "vector at this position is one common way to summarise the whole sentence."),
    "pooler": ("Pooler",
               "The step that turns the model's many token vectors into one sentence vector: take the [CLS] "
               "vector, or average all token vectors (\"mean\"), or put [CLS] through a small extra layer "
               "(the MLP head)."),
    "mlp": ("MLP head",
            "A small extra layer (a multi-layer perceptron) on top of the [CLS] vector. Unsupervised SimCSE "
            "trains with it and throws it away afterwards; supervised SimCSE keeps it."),
    "entailment": ("Entailment, contradiction, hard negative",
                   "From datasets where people labelled sentence pairs. \"A man plays guitar\" entails "
                   "\"Someone makes music\" (if the first is true, so is the second): a positive pair. It "
                   "contradicts \"Nobody is playing\". A contradiction looks similar in words but means "
                   "something else, so it is a hard negative: hard to tell apart, and useful to learn from."),
    "softmax": ("Softmax",
                "Turns a row of scores into chances that add up to 1: the highest score gets the largest "
                "share. In SimCSE, each sentence's row of similarities becomes \"how sure is the model that "
                "this candidate is my twin?\""),
    "temperature": ("Temperature τ",
                    "The scores are divided by τ before the softmax. A small τ (0.05) exaggerates differences, "
                    "so the softmax bets almost everything on the top candidate; a large τ (1) flattens it "
                    "towards an even guess. In the paper's Table D.1 (supervised, as we read it) 0.05 works best."),
    "loss": ("Loss and chance level",
             "The number training pushes down. For each sentence it is minus the log of the chance the model "
             "gave its true twin: 0 when it is certain and right. A model that guesses evenly among C "
             "candidates scores ln C, the chance line on the plots."),
    "spearman": ("Spearman correlation",
                 "How well the model's ranking of sentence pairs agrees with people's ranking: people scored "
                 "how similar each pair is (0 to 5). 100 means the same order as the people, 0 means no "
                 "relation. Only the order counts, not the exact numbers."),
    "alignment": ("Alignment",
                  "How close the two vectors of a matching pair are, on average. Lower is better. Beware: if "
                  "every sentence were squeezed into one spot, alignment would be perfect and useless, which "
                  "is why it is read together with uniformity."),
    "uniformity": ("Uniformity",
                   "How evenly all sentences are spread over the sphere of possible directions. Lower (more "
                   "negative) is better: sentences use the whole space instead of crowding together."),
    "anisotropy": ("Anisotropy (the cone)",
                   "When all sentence vectors point into one narrow cone, any two sentences look similar "
                   "(high cosine) even when unrelated. Measured as the average cosine of random pairs: near 0 "
                   "is healthy. SimCSE opens the cone."),
    "umap": ("UMAP",
             "A way to draw hundreds of dimensions on a flat map while keeping each point's nearest "
             "neighbours near it. Good for seeing groups; distances between far-apart groups and the overall "
             "shape (such as a cone) are not kept. The cone view uses a plain linear projection instead."),
}


def card_markdown(term: str) -> str:
    """One card as Markdown (KeyError for an unknown term: a programming error)."""
    title, body = TERMS[term]
    return f"**{title}.** {body}"


def cards(*terms: str, label: str | None = None) -> gr.Accordion:
    """A closed accordion with the cards of ``terms``, to place where they first appear."""
    names = " · ".join(TERMS[t][0] for t in terms)
    with gr.Accordion(label or f"ⓘ Words on this panel: {names}", open=False) as accordion:
        gr.Markdown("\n\n".join(card_markdown(t) for t in terms), elem_classes=["glossary-card"])
    return accordion


def build() -> None:
    """Every card, two columns."""
    gr.Markdown("Each card reads in under a minute. The same cards open under the panels where the words "
                "first appear.")
    terms = list(TERMS)
    half = (len(terms) + 1) // 2
    with gr.Row():
        for column in (terms[:half], terms[half:]):
            with gr.Column():
                for term in column:
                    gr.Markdown(card_markdown(term), elem_classes=["glossary-card"], container=True,
                                padding=True)
