"""Best-path decoding and error measures."""

import torch

from lstmbench.training.metrics import best_path, character_errors, edit_distance, sequence_errors


def one_hot_frames(frames, classes=4):
    return torch.nn.functional.one_hot(torch.tensor(frames), classes).float().unsqueeze(1)


def test_best_path_merges_repeats_and_drops_blanks():
    logits = one_hot_frames([0, 1, 1, 0, 1, 2, 2, 3, 0])
    assert best_path(logits, torch.tensor([9])) == [[1, 1, 2, 3]]


def test_best_path_ignores_frames_past_the_length():
    logits = one_hot_frames([2, 0, 3, 3])
    assert best_path(logits, torch.tensor([2])) == [[2]]


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0


def test_error_counts():
    assert sequence_errors([[1], [2], []], [[1], [3], [4]]) == 2
    assert character_errors([[1, 2], [3]], [[1, 2, 3], [3]]) == (1, 4)
