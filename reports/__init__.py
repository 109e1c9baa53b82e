"""attnbench reports: the report generator and the regression gate (they read records only)."""
