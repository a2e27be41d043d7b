"""The training loop's parts: gradient reduction, preemption, progress reports, snapshots, exact resume, run folders."""
