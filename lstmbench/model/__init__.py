"""The model: cell specifications, kernels, cells and networks. Knows nothing of training
or data."""
