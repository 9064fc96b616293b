"""Where the project's shipped files are: the bundled assets and the raw language model."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = PROJECT_ROOT / "assets"  # demo pairs, sample training files, the retrieval corpus
