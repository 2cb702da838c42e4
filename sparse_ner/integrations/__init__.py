"""Optional bridges to third-party frameworks; each module imports its framework (``spacy.py``: spaCy).

Nothing in the rest of the package imports these modules; ``cli/`` may.
"""
