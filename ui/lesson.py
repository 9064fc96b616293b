"""Lesson mode and presenter mode: a guided ~20-minute sequence through the app, with a "next step" button.

The lesson bar sits above the tabs. Each step opens the tab (and inner panel) it is about and says, in two
sentences, what to press and what to look for; the visitor's session (their fine-tuned model, their runs)
is the same in every tab, so each step builds on the one before. Presenter mode enlarges the text and hides
what a class does not need on the projector (the long header, the settings), so the main action of every
step is above the fold at 1280x720.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass(frozen=True)
class Step:
    """One step of the lesson."""

    title: str
    tab: str  # id of the outer tab to open
    inner: str | None  # id of the Inside SimCSE panel to open, if any
    minutes: int  # suggested time in class
    say: str  # what to press and what to look for


STEPS: tuple[Step, ...] = (
    Step("Similarity", "tab-similarity", None, 3,
         "Press **Compare**, then try the pairs below it. A sentence becomes a vector; the cosine says how much "
         "two vectors point the same way. Try the opposites pair: close in topic, not in meaning."),
    Step("Dropout twins", "tab-inside", "inside-twins", 3,
         "Press **Encode each sentence twice**, then drag the dropout slider. With dropout on, the same sentence "
         "gives two slightly different vectors: unsupervised SimCSE's only augmentation."),
    Step("Inside the loss", "tab-inside", "inside-loss", 4,
         "Press **Encode the batch** and find each anchor's twin (green box) among the others. Drag τ from 0.05 "
         "to 1: the softmax flattens and the loss climbs to the chance line ln(batch)."),
    Step("A one-minute fine-tune", "tab-finetune", None, 4,
         "Press **Start fine-tuning**. The loss starts far below the dashed chance line (this model already "
         "tells sentences apart); watch STS Spearman rise and the point move left (uniformity) on Figure 2."),
    Step("The cone opens", "tab-inside", "inside-cone", 3,
         "Press **Draw before and after**. Before: long arrows in a narrow fan, every sentence points the same "
         "way. After: shorter arrows in a wider fan (they now point into other directions too): the cone opens."),
    Step("Evaluation", "tab-evaluate", None, 3,
         "Press **Evaluate** to score the base and your fine-tuned model on STS-B. Then compare them in the "
         "Embedding map and Retrieval tabs, or try a preset in Inside SimCSE → Ablations."),
)

CSS = """
#lesson-bar { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px; }
#lesson-step p { margin: 0.15em 0; }
.glossary-card p { margin: 0.2em 0; }
body.presenter #header p, body.presenter #how-it-works, body.presenter #ft-settings,
body.presenter #ft-intro { display: none !important; }
body.presenter #header h1 { font-size: 1.6em; margin: 0; }
body.presenter gradio-app, body.presenter .gradio-container {
  --text-sm: 15px; --text-md: 18px; --text-lg: 21px; --text-xl: 26px; --text-xxl: 30px;
  --block-label-text-size: 15px; --block-info-text-size: 15px; --button-large-text-size: 20px;
  --section-header-text-size: 18px; --input-text-size: 18px;
}
body.presenter .gradio-container { font-size: 18px; }
"""

PRESENTER_JS = "(on) => { document.body.classList.toggle('presenter', on); return []; }"


def step_markdown(index: int) -> str:
    """The lesson bar's text for step ``index`` (0-based)."""
    step = STEPS[index]
    return (f"**Lesson · step {index + 1} of {len(STEPS)} · {step.title}** (about {step.minutes} min)  \n"
            f"{step.say}")


def go(index: int, delta: int) -> tuple:
    """Handler: move ``delta`` steps (clamped) and open that step's tab and panel."""
    index = max(0, min(len(STEPS) - 1, int(index or 0) + delta))
    step = STEPS[index]
    inner = gr.Tabs(selected=step.inner) if step.inner else gr.skip()
    return (index, step_markdown(index), gr.Tabs(selected=step.tab), inner,
            gr.update(interactive=index > 0), gr.update(interactive=index < len(STEPS) - 1))


def build() -> dict:
    """Lay out the lesson bar (above the tabs); :func:`wire` connects it once the tabs exist."""
    with gr.Row(elem_id="lesson-bar", equal_height=True):
        step_text = gr.Markdown(step_markdown(0), elem_id="lesson-step")
        with gr.Column(scale=0, min_width=330):
            with gr.Row():
                back = gr.Button("◀ Back", size="sm", elem_id="lesson-back", interactive=False, min_width=80)
                ahead = gr.Button("Next step ▶", size="sm", variant="primary", elem_id="lesson-next",
                                  min_width=110)
            presenter = gr.Checkbox(False, label="Presenter mode: large text", elem_id="presenter-mode",
                                    container=False)
    return {"index": gr.State(0), "text": step_text, "back": back, "next": ahead, "presenter": presenter}


def wire(bar: dict, tabs: gr.Tabs, inner: gr.Tabs) -> None:
    """Connect the lesson bar to the outer tabs and the Inside SimCSE panels."""
    outputs = [bar["index"], bar["text"], tabs, inner, bar["back"], bar["next"]]
    bar["next"].click(lambda i: go(i, 1), bar["index"], outputs, queue=False, api_visibility="private")
    bar["back"].click(lambda i: go(i, -1), bar["index"], outputs, queue=False, api_visibility="private")
    bar["presenter"].change(None, bar["presenter"], None, js=PRESENTER_JS, queue=False, api_visibility="private")
