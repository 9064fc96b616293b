"""Benchmarks of SimCSE Studio: encoding, training, quality per minute, retrieval, projection and the app.

Run them all with ``python -m bench`` (add ``--quick`` for a smoke test) or one with
``python -m bench.encode_speed``; each prints a table and writes ``bench/results/<name>.json``. See
``bench/README.md``.
"""

from __future__ import annotations
