"""Reusable PyTorch machinery: persistence, misc helpers, training statistics, custom-op building."""
