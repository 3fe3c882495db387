"""The `lstmbench` command: shared option groups, and each feature's commands."""
