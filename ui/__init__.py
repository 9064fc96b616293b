"""The Gradio layer of SimCSE Studio: one module per tab, plus shared state, figures and copy.

Handlers here validate input, call :mod:`simcse_core`, and format the result; no SimCSE logic lives here.
"""

from __future__ import annotations
