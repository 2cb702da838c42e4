"""Offline training with Lightning: the LightningModule, the DataModule and the LightningCLI entry.

Imports ``core`` and ``data``.
"""
