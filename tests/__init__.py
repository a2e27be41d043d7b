"""Test suite (CPU; GPU tests are marked and skipped without CUDA)."""
