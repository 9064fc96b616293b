"""Small pieces of browser-side code that tabs attach to their events (``js=``); no Python state."""

from __future__ import annotations

# A visitor's runs live in their server session, which ends when the page is closed or reloaded. Once they have
# started a run, leaving the page asks first (browsers show their own wording, so the page says the rest: see
# ui.text.RUNS_LIVE_IN_THIS_TAB).
WARN_BEFORE_LEAVING = """() => {
  if (!window.__simcseWarnBeforeLeaving) {
    window.__simcseWarnBeforeLeaving = true;
    window.addEventListener('beforeunload', (event) => { event.preventDefault(); event.returnValue = ''; });
  }
  return [];
}"""
