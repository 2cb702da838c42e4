"""The annotation loop: the online tagger, stream scoring and selection, patterns, calibration, the
Prodigy recipes and the loop simulation. Imports ``core`` and ``data``; never ``training``.
"""
