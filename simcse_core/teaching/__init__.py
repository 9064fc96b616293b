"""Teaching: what the lessons compute (the mechanisms, the ablation presets, the 2-D projections)."""
