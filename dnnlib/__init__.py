"""Plumbing with no torch in it: EasyDict, URL opening and caching, object construction from kwargs."""
