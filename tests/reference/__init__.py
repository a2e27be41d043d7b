"""Numbers recorded from stylegan2-ada-pytorch, and the script that recorded them (the reference is never read by tests)."""
