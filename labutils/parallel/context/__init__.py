"""Context parallelism, Chapter 8: ``sharding`` (contiguous and zigzag layouts, causal work),
``ring`` (ring attention: engine and communication), ``workers`` (runs checked against one
process), ``cost`` (bytes, memory and the compute-bound point)."""
