"""The model: lattices, the CRF, losses, the tagger and its encoders, metrics, export, predict, evaluate.

Imports ``sparse_ner.tags`` and ``sparse_ner.data`` only.
"""
