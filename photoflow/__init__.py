"""Photoflow: a self-hosted photo host for pictures and their camera RAW files."""

__version__ = "0.1.0"
