"""sparse_ner: named-entity taggers trained from sparse binary (Prodigy ``ner.teach``) answers."""

__version__ = "0.1.0"
