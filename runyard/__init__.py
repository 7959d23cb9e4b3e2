"""Runyard: batch processing of scientific data on workflows of tasks, runs and jobs."""

from __future__ import annotations

__version__ = "0.1.0"
