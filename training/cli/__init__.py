"""The command-line layer above the training loop: options, presets, run configuration, process launch."""
