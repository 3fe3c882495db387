"""Text-line OCR: line readers, 48 px normalization, codec, generated UW3-like lines."""
