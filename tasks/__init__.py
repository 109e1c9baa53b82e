"""attnbench tasks: one sub-package per task (data module + Lightning module)."""
