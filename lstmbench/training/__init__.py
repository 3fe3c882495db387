"""Training: RunConfig, the training loop (single and fused runs), losses, targets, metrics,
checkpoints."""
