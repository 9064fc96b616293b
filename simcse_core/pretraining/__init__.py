"""Pretraining: the raw language model's corpus and its masked-language-model pretraining."""
