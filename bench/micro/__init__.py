"""``attnbench micro``: speed and memory micro-benchmarks of the dense variants.

- ``grid``: the grid of cases, from a YAML file (``configs/bench/*.yaml``) and command-line overrides;
- ``case``: one case, refused, checked against the oracle, measured and turned into a record row;
- ``memory``: the peak memory of one call, measured (CUDA allocator, or the CPU's peak RSS);
- ``run``: the whole grid, rows appended to the record CSV as they finish, and a console summary.
"""
