"""The model: the catalogue of models, the encoder, its poolers, and the unpadded and compact forms."""
