"""Interoperation: exports to and imports from the official SimCSE tool and sentence-transformers."""
