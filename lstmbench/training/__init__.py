"""Training: RunConfig, the training loop (single and packed runs), losses, targets, metrics,
checkpoints."""
