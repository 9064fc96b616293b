"""Evaluation: STS sets, metrics (Spearman, alignment, uniformity), the paper's full STS suite and figures."""
