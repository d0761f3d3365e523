"""Pictures: drawing a graph with Graphviz, and the backward stepper."""
