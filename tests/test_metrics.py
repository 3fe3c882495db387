"""Best-path decoding and error measures."""

import numpy as np
import torch

from lstmbench.training.metrics import best_path, character_errors, edit_distance, sequence_errors
from lstmbench.training.recognize import align, confusions


def one_hot_frames(frames, classes=4):
    return torch.nn.functional.one_hot(torch.tensor(frames), classes).float().unsqueeze(1)


def test_best_path_merges_repeats_and_drops_blanks():
    logits = one_hot_frames([0, 1, 1, 0, 1, 2, 2, 3, 0])
    assert best_path(logits, torch.tensor([9])) == [[1, 1, 2, 3]]


def test_best_path_ignores_frames_past_the_length():
    logits = one_hot_frames([2, 0, 3, 3])
    assert best_path(logits, torch.tensor([2])) == [[2]]


def slow_edit_distance(a, b) -> int:
    """The textbook dynamic programme, cell by cell: the reference the fast one must match."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if i == 0 or j == 0:
                table[i][j] = i + j
            else:
                table[i][j] = min(
                    table[i - 1][j] + 1,
                    table[i][j - 1] + 1,
                    table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
                )
    return table[len(a)][len(b)]


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, -1, 3], [1, 2, 3]) == 1  # an unknown character is an error


def test_edit_distance_and_edit_script_agree_with_the_slow_reference():
    rng = np.random.default_rng(5)
    for _ in range(300):
        a = "".join(rng.choice(list("abc l1"), rng.integers(0, 15)))
        b = "".join(rng.choice(list("abc l1"), rng.integers(0, 15)))
        assert edit_distance(a, b) == slow_edit_distance(a, b)
        labels_a, labels_b = [ord(c) for c in a], [ord(c) for c in b]
        assert edit_distance(labels_a, labels_b) == slow_edit_distance(a, b)
        errors = align(a, b)
        assert len(errors) == slow_edit_distance(a, b)
        assert all(x != y for x, y in errors)
        assert sum(1 for x, _ in errors if x) <= len(a) and sum(1 for _, y in errors if y) <= len(b)


def test_confusion_table_of_a_constructed_case():
    references = ["Efficient Algorithms", "in Graphs", "General", "same"]
    hypotheses = ["Effcient A1gorithms", "in Graphs.", "Genera1", "same"]
    counts = confusions(references, hypotheses)
    # 'i' dropped once, 'l' read as '1' twice, '.' inserted once; nothing else
    assert counts == {("i", ""): 1, ("l", "1"): 2, ("", "."): 1}


def test_error_counts():
    assert sequence_errors([[1], [2], []], [[1], [3], [4]]) == 2
    assert character_errors([[1, 2], [3]], [[1, 2, 3], [3]]) == (1, 4)
