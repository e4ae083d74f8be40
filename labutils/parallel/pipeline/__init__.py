"""Pipeline parallelism, Chapter 7: ``stage`` (the GPT cut into stages, a schedule run on real
ranks), ``schedule`` (schedules as data, the simulator, the plot), ``cost`` (closed forms),
``workers`` (runs checked against one process)."""
