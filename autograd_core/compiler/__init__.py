"""The compiler: tracing to a program (the IR), the batch axis, the Python back-end, the lowering to
block ops and the batched NumPy back-end, and `jit`."""
