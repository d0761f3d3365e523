"""nn: a small neural-network library on top of autograd_core."""
