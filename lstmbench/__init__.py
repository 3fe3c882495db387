"""lstmbench: benchmarking of LSTM networks and other recurrent cells."""

__version__ = "0.1.0"
