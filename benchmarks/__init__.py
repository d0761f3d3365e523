"""Speed and memory against micrograd and the plain-float floor: `python -m benchmarks.run`."""
