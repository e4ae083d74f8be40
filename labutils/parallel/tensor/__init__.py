"""Tensor (and sequence) parallelism, Chapter 6: ``comm`` (f and g), ``layers`` (the split
GPT), ``workers`` (runs checked against one process), ``cost`` (bytes and seconds per layer)."""
