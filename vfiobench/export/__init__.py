"""Runs in other tools' formats: Perfetto traces (:mod:`~vfiobench.export.perfetto`).

Above the analysis layer (it reads runs and the interrupt timeline); nothing below imports it.
"""
