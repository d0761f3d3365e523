"""The engine: numbers, the op table, `Value`, the reverse walk and the modes."""
