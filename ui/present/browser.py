"""Small pieces of browser-side code that tabs attach to their events (``js=``); no Python state."""

from __future__ import annotations

# A visitor's runs live in their server session, which ends when the page is closed or reloaded. Once they have
# started a run, leaving the page asks first (browsers show their own wording, so the page says the rest: see
# ui.present.text.runs_live_in_this_tab).
WARN_BEFORE_LEAVING = """() => {
  if (!window.__simcseWarnBeforeLeaving) {
    window.__simcseWarnBeforeLeaving = true;
    window.addEventListener('beforeunload', (event) => { event.preventDefault(); event.returnValue = ''; });
  }
  return [];
}"""

# A figure with side-by-side panels carries its stacked layout in layout.meta.phone (ui.present.phone.stack_on_phone):
# on a narrow screen this applies it after every draw of the figure (gradio redraws with Plotly.react, which brings
# back the side-by-side layout), once per figure.
PHONE_WIDTH_PX = 640
PHONE_PLOTS_HEAD = """<script>
(() => {
  const narrow = () => window.innerWidth <= PHONE_WIDTH_PX;
  const fit = (gd) => {
    const phone = gd.layout && gd.layout.meta && gd.layout.meta.phone;
    if (!phone || !narrow() || !window.Plotly) return;
    const key = JSON.stringify(phone);
    if (gd.__simcsePhone === key && gd.layout.height === phone.height) return;
    gd.__simcsePhone = key;
    window.Plotly.relayout(gd, phone);
  };
  const hook = () => document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
    if (gd.__simcseHooked || typeof gd.on !== 'function') return;
    gd.__simcseHooked = true;
    gd.on('plotly_afterplot', () => fit(gd));
    fit(gd);
  });
  let queued = false;  // at most once a frame: a live run changes the page many times a second
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; hook(); });
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>""".replace("PHONE_WIDTH_PX", str(PHONE_WIDTH_PX))
