"""The Gradio layer of SimCSE Studio, by role: ``tabs`` (one module per tab; none imports another), ``serving``
(settings, sessions, people, the run lifecycle, queue, errors, forms, the server's edge) and ``present`` (every
sentence, figures, glossary cards, input components). ``app.py`` builds the page.

Handlers here validate input, call :mod:`simcse_core`, and format the result; no SimCSE logic lives here.
"""

from __future__ import annotations
