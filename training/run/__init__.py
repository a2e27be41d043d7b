"""What a run is made of: config (presets + flags), launch (processes), run_dir, report, snapshot and resume."""
