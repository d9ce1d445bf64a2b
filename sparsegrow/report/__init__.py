"""RESULTS.md, generated from the result files the experiments write (``sparsegrow report``)."""

from .build import build_report, long_stream_rows, targets

__all__ = ["build_report", "long_stream_rows", "targets"]
