"""Speed and memory measurement of the recurrences."""
