"""attnbench runs: micro-benchmarks, the suite runner, sweeps, and the command line."""
