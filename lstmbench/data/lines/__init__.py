"""Text-line OCR data: line readers, 48 px normalization, codec, generated UW3-like lines.

Registers the datasets `lines:TRAIN[,TEST]` (directories, list files, .h5) and
`uw3like:tiny|small|full[:SEED]` (or a make-lines directory).
"""

from lstmbench.data.registry import register_dataset

# Lines are normalized to this height (the paper's); a run may read them scaled smaller.
TARGET_HEIGHT = 48


def _load_lines(argument, path, validation, seed):
    from lstmbench.data.lines.dataset import load_lines  # deferred: PIL and SciPy load slowly

    return load_lines(argument or path, validation, seed)


def _load_uw3like(argument, path, validation, seed):
    from lstmbench.data.lines.generate import load_uw3like  # deferred: fonts and matplotlib

    return load_uw3like(argument, path, validation, seed)


register_dataset("lines", _load_lines)
register_dataset("uw3like", _load_uw3like)
