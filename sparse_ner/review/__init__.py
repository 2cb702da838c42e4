"""Review: rank examples by how likely their annotation is a mistake, Prodigy review tasks, the HTML
report, out-of-fold scoring and merging corrections back. Imports ``core`` and ``data`` (and
``training`` for out-of-fold models only).
"""
