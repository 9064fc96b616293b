"""Lesson mode and presenter mode: a guided ~20-minute sequence through the app, with a "next step" button.

The lesson bar sits above the tabs. Each step opens the tab (and inner panel) it is about and says, in two
sentences, what to press and what to look for; the visitor's session (their fine-tuned model, their runs)
is the same in every tab, so each step builds on the one before. Presenter mode enlarges the text and hides
what a class does not need on the projector (the long header, the settings), so the main action of every
step is above the fold at 1280x720.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gradio as gr

from simcse_core.teaching import lessons
from ui.serving import forms


@dataclass(frozen=True)
class Step:
    """One step of the lesson."""

    title: str
    tab: str  # id of the outer tab to open
    inner: str | None  # id of the Inside SimCSE panel to open, if any
    minutes: int  # suggested time in class
    say: str  # what to press and what to look for


def _fine_tune_step() -> str:
    """The fine-tune step's text: what to look for, with the lesson run's measured figures (never typed here)."""
    m, scale = lessons.MEASURED, lessons.TRAINED_AT_SCALE
    measured = (f" On the project's machine the lesson run went {m.start_dev:.1f} → {m.after_dev:.1f} on STS-B dev, "
                f"and the mean cosine of two STS-B dev sentences {m.start_anisotropy:.2f} → "
                f"{m.after_anisotropy:.2f} (the cone measures your own run on corpus sentences)."
                if m.start_dev or m.after_dev else "")
    alignment = ("alignment rises here, unlike BERT-base's in the paper" if m.after_alignment > m.start_alignment
                 else "alignment holds, as BERT-base's does in the paper")
    return (f"Press **Start fine-tuning** (from {lessons.START_MODEL}). Its vectors start weak and crowded "
            f"into a cone; dropout alone makes them better: watch STS Spearman rise and the point move left "
            f"(uniformity) on Figure 2; {alignment}.{measured} For scale, all-MiniLM-L6-v2, trained at scale, "
            f"reads {scale.stsb_dev:.1f} on the full STS-B dev set ({scale.pooler} pooler).")


STEPS: tuple[Step, ...] = (
    Step("Similarity", "tab-similarity", None, 3,
         "Press **Compare**: all-MiniLM-L6-v2, a model for real use, turns each sentence into a vector; the "
         "cosine says how alike they point. Try the opposites: close in topic, not meaning."),
    Step("Dropout twins", "tab-inside", "inside-twins", 3,
         f"Now the raw model the lessons start from, {lessons.START_MODEL} (masked LM only). Press **Encode each "
         "sentence twice**, then drag the dropout slider: with dropout on, the same sentence gives two slightly "
         "different vectors, unsupervised SimCSE's only augmentation."),
    Step("Inside the loss", "tab-inside", "inside-loss", 4,
         "Press **Encode the batch** and find each anchor's twin (green box) among the others. Drag τ from 0.05 "
         "to 1: the softmax flattens and the loss moves towards the chance line (ln(batch), or ln(2·batch) with hard "
         "negatives: every candidate equally likely)."),
    Step("A one-minute fine-tune", "tab-finetune", None, 4, _fine_tune_step()),
    Step("The cone opens", "tab-inside", "inside-cone", 3,
         f"Press **Draw before and after**. Before ({lessons.START_MODEL}): long arrows in a narrow fan, every "
         "sentence points the same way. After: shorter arrows in a wider fan (they now point into other "
         "directions too): the cone opens."),
    Step("Evaluation", "tab-evaluate", None, 3,
         "Press **Evaluate** to score your fine-tuned run beside the model it started from "
         f"({lessons.START_MODEL}) on STS-B (with no run yet, the model picked at the top). Then compare them in "
         "the Embedding map and Retrieval tabs, or try a preset in Inside SimCSE → Ablations (every preset starts "
         "from the raw model)."),
)

# The main button of each step, by the panel it is on (inner panel, else outer tab): Next scrolls to it, so the
# step works outside presenter mode and on a phone, where it would be below the fold.
MAIN_BUTTON = {"tab-similarity": "sim-run", "inside-twins": "twins-run", "inside-loss": "loss-run",
               "tab-finetune": "ft-start", "inside-cone": "cone-run", "tab-evaluate": "eval-run"}

# Runs after the tab has switched, given the step's text ("… step 3 of 6 …"; a gr.State's value never reaches
# the browser): waits for the step's button to be shown, scrolls it to the middle of the screen and outlines it
# for a moment.
SCROLL_JS = """(shown) => {
  const ids = %s;
  const found = /step (\\d+) of/.exec(shown || '');
  const id = found ? ids[Number(found[1]) - 1] : null;
  let tries = 0;
  const go = () => {
    const el = id && document.getElementById(id);
    if (el && el.offsetParent !== null) {
      el.scrollIntoView({block: 'center', behavior: 'smooth'});
      el.classList.add('lesson-target');
      setTimeout(() => el.classList.remove('lesson-target'), 2500);
    } else if (tries++ < 40) { setTimeout(go, 100); }
  };
  setTimeout(go, 50);
  return [];
}"""

CSS = """
.lesson-target { outline: 3px solid var(--color-accent); outline-offset: 3px; }
#lesson-bar { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 10px; }
#lesson-step p { margin: 0.15em 0; }
.glossary-card p { margin: 0.2em 0; }
body.presenter #header p, body.presenter #how-it-works, body.presenter #ft-settings,
body.presenter #ft-intro, body.presenter #inside-start-note,
body.presenter #ft-start-note, body.presenter #ft-start-from,
body.presenter #ft-data-choice, body.presenter #inside-start { display: none !important; }
body.presenter gradio-app, body.presenter .gradio-container {
  --text-sm: 15px; --text-md: 18px; --text-lg: 21px; --text-xl: 26px; --text-xxl: 30px;
  --block-label-text-size: 15px; --block-info-text-size: 15px; --button-large-text-size: 20px;
  --section-header-text-size: 18px; --input-text-size: 18px;
}
body.presenter .gradio-container { font-size: 18px; }
/* Fine-tune: the loss and STS charts share a row, Figure 2 on the next line. In presenter mode the form (its
   settings hidden) shrinks to its buttons, the status keeps its first paragraph (the comparison it adds is drawn
   as the STS chart's lines), and the three charts share one row: all on a 1280x720 screen during a run. */
#ft-charts { flex-wrap: wrap !important; }
#ft-charts #ft-au-plot { flex: 1 1 100% !important; }
/* gradio scopes every rule under .gradio-container .contain: this one must outweigh the scoped rule above */
body.presenter .gradio-container .contain #ft-charts #ft-au-plot { flex: 1 1 0% !important; }
body.presenter #header h1 { display: none; }
body.presenter #ft-form { flex: 0 0 220px !important; min-width: 220px !important; }
body.presenter #ft-form .row { flex-direction: column !important; }
body.presenter #ft-status p:nth-of-type(n+2) { display: none; }
body.presenter #model-picker .info-text, body.presenter #pooler-picker .info-text,
body.presenter #model-status { display: none !important; }
/* Plot text grows with the rest in presenter mode (plotly writes its sizes inline). */
body.presenter .js-plotly-plot .xtick text, body.presenter .js-plotly-plot .ytick text,
body.presenter .js-plotly-plot .legendtext { font-size: 15px !important; }
body.presenter .js-plotly-plot .xtitle, body.presenter .js-plotly-plot .ytitle { font-size: 17px !important; }
body.presenter .js-plotly-plot .gtitle { font-size: 21px !important; }
/* On a phone, figures with panels side by side draw them one above the other (ui.present.phone.stack_on_phone)
   and the similarity matrix names its rows by number (numbered_on_phone), both at the screen's width; a figure
   is contained in its box (it never widens the page). */
@media (max-width: 640px) {
  #lesson-bar { flex-direction: column !important; }
  #lesson-bar > * { width: 100% !important; min-width: 0 !important; flex: 1 1 auto !important; }
  #lesson-bar .row { flex-wrap: nowrap !important; }
  #lesson-bar button { min-width: 0 !important; flex: 1 1 0 !important; }
  #twins-plot, #loss-plot, #cone-plot, #map-plot, #sim-heatmap, #ft-au-plot {
    overflow-x: auto; min-width: 0 !important; contain: inline-size; }
}
"""

PRESENTER_JS = "(on) => { document.body.classList.toggle('presenter', on); return []; }"


def step_markdown(index: int) -> str:
    """The lesson bar's text for step ``index`` (0-based)."""
    step = STEPS[index]
    return (f"**Lesson · step {index + 1} of {len(STEPS)} · {step.title}** (about {step.minutes} min)  \n"
            f"{step.say}")


def go(index: int, delta: int) -> dict:
    """Handler: move ``delta`` steps (clamped) and open that step's tab and panel (and its Inside panel, if any)."""
    index = max(0, min(len(STEPS) - 1, int(index or 0) + delta))
    step = STEPS[index]
    shown = {"index": index, "text": step_markdown(index), "tabs": gr.Tabs(selected=step.tab),
             "back": gr.update(interactive=index > 0), "next": gr.update(interactive=index < len(STEPS) - 1)}
    return shown | ({"inner": gr.Tabs(selected=step.inner)} if step.inner else {})


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


def scroll_js() -> str:
    """The browser code that brings each step's main button into view (see :data:`MAIN_BUTTON`)."""
    import json

    return SCROLL_JS % json.dumps([MAIN_BUTTON.get(step.inner or step.tab) for step in STEPS])


def wire(bar: dict, tabs: gr.Tabs, inner: gr.Tabs) -> None:
    """Connect the lesson bar to the outer tabs and the Inside SimCSE panels."""
    outputs = {"index": bar["index"], "text": bar["text"], "tabs": tabs, "inner": inner, "back": bar["back"],
               "next": bar["next"]}
    for button, delta in ((bar["next"], 1), (bar["back"], -1)):
        button.click(**forms.wire(functools.partial(go, delta=delta), {"index": bar["index"]}, outputs),
                     queue=False, api_visibility="private"
                     ).then(None, bar["text"], None, js=scroll_js(), queue=False, api_visibility="private")
    bar["presenter"].change(None, bar["presenter"], None, js=PRESENTER_JS, queue=False, api_visibility="private")
