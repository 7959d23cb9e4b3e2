"""Compatibility modules for task scripts written for XamFlow's API (SPEC section 9).

The worker puts this folder on every script's path, so that ``import xfworkerutil``,
``import network``, ``import xfsortorder`` and ``import omni`` work unmodified. Each module is
a thin facade over Runyard's own API (``runyard.task``), which new scripts should use.
"""
