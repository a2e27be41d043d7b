"""Custom ops with CUDA kernels and plain-PyTorch reference paths."""
