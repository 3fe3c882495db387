"""Generated UW3-like lines: determinism, text split, cache reuse, options and errors."""

import json

import numpy as np
import pytest

from lstmbench.cli.main import main
from lstmbench.data import load_dataset
from lstmbench.data.lines.generate import (
    PRESETS,
    GenerationParams,
    dataset_directory,
    generate,
    is_generated,
    make_line,
    read_generated,
    sample_uw3like,
    split_words,
)
from lstmbench.errors import UserError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("uw3like")


@pytest.fixture(scope="module")
def tiny(cache):
    messages = []
    directory = generate(GenerationParams("tiny", 0), cache, workers=2, log=messages.append)
    assert any("lines/s" in m and "faces: courier-regular" in m for m in messages)
    return directory


def test_generated_set_has_the_preset_sizes_and_48px_lines(tiny):
    meta = json.loads((tiny / "meta.json").read_text())
    assert meta["lines_per_second"] > 0
    train, test = read_generated(tiny, "train"), read_generated(tiny, "test")
    assert len(train) == PRESETS["tiny"].train and len(test) == PRESETS["tiny"].test
    for line in train[:50] + test[:20]:
        assert line.image.shape[0] == 48 and line.image.dtype == np.uint8
        assert PRESETS["tiny"].min_chars <= len(line.text) <= PRESETS["tiny"].max_chars
        assert line.image.shape[1] > 3 * len(line.text)


def test_same_seed_same_pixels_whatever_the_worker_count(tiny):
    params = GenerationParams("tiny", 0)
    fonts, words = params.font_paths(), split_words(params.corpus_text())
    stored = read_generated(tiny, "test")  # written by two worker processes
    for index in (0, 7, 59):
        text, _, image = make_line(params, "test", index, words["test"], fonts)
        assert text == stored[index].text and np.array_equal(image, stored[index].image)
    other = GenerationParams("tiny", 1)
    texts = [make_line(other, "test", i, words["test"], fonts)[0] for i in range(5)]
    assert texts != [line.text for line in stored[:5]]


def test_train_and_test_texts_are_disjoint(tiny):
    train = {line.text for line in read_generated(tiny, "train")}
    test = [line.text for line in read_generated(tiny, "test")]
    # Stock phrases of the report text ("Author's address:") can make a short line recur.
    assert sum(text in train for text in test) <= 0.03 * len(test)
    # The word stretches themselves: no stretch of test text also occurs as training text,
    # and both parts are a real share of the corpus.
    words = split_words(GenerationParams().corpus_text())
    train_stretches = {tuple(s) for s in words["train"]}
    test_stretches = {tuple(s) for s in words["test"]}
    assert not train_stretches & test_stretches
    train_words, test_words = sum(map(len, words["train"])), sum(map(len, words["test"]))
    assert 0.05 < test_words / (train_words + test_words) < 0.5


def test_cached_set_is_reused_and_loads_as_a_line_dataset(tiny, cache):
    messages = []
    assert generate(GenerationParams("tiny", 0), cache, log=messages.append) == tiny
    assert messages == []  # nothing regenerated
    train, test = load_dataset("uw3like:tiny", str(cache))
    assert train.codec is test.codec and train.metric == "character"
    assert len(train) == PRESETS["tiny"].train and train.n_features == 48
    assert set("".join(train.texts)) <= set(train.codec.characters)
    # the codec holds every character the text can produce, not only those drawn
    assert set(GenerationParams().characters()) == set(train.codec.characters)
    assert any(c.isdigit() for c in train.codec.characters)
    assert any(c in ".,;:()" for c in train.codec.characters)


def test_a_sample_is_the_first_lines_of_the_set(tiny, cache):
    assert is_generated("tiny", str(cache))
    assert not is_generated("small", str(cache))
    train, test = load_dataset("uw3like:tiny", str(cache))
    sample_train, sample_test = sample_uw3like("tiny", 6, 3)
    assert sample_train.texts == train.texts[:6] and sample_test.texts == test.texts[:3]
    assert list(sample_train.widths) == list(train.widths[:6])
    assert sample_train.codec is sample_test.codec


def test_user_corpus_and_fonts_change_the_key(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(f"word{i % 97}" for i in range(2000)))
    base = GenerationParams("tiny", 0)
    custom = GenerationParams("tiny", 0, corpus=str(corpus))
    assert base.key() != custom.key()
    # the corpus is its text: a copy elsewhere makes the same set, an edit another
    (tmp_path / "copy").mkdir()
    copy = tmp_path / "copy" / "corpus.txt"
    copy.write_text(corpus.read_text())
    assert GenerationParams("tiny", 0, corpus=str(copy)).key() == custom.key()
    copy.write_text(corpus.read_text() + " more")
    assert GenerationParams("tiny", 0, corpus=str(copy)).key() != custom.key()
    font = GenerationParams().font_paths()[3][0]
    assert GenerationParams("tiny", 0, fonts=(font,)).key() != base.key()
    assert dataset_directory(base, tmp_path) != dataset_directory(custom, tmp_path)
    fonts, words = custom.font_paths(), split_words(custom.corpus_text())
    assert "word" in make_line(custom, "train", 0, words["train"], fonts)[0]


def test_bad_generation_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown uw3like size 'huge'"):
        GenerationParams("huge").preset()
    with pytest.raises(UserError, match="font file"):
        GenerationParams("tiny", fonts=(str(tmp_path / "none.ttf"),)).font_paths()
    (tmp_path / "short.txt").write_text("too few words")
    with pytest.raises(UserError, match="too short"):
        GenerationParams("tiny", corpus=str(tmp_path / "short.txt")).corpus_text()
    with pytest.raises(UserError, match="seed must be an integer"):
        load_dataset("uw3like:tiny:x")
    with pytest.raises(UserError, match="no train shards"):
        read_generated(tmp_path, "train")


def test_make_lines_command(tiny, cache, capsys):
    assert main(["data", "make-lines", "--size", "tiny", "--out", str(cache)]) == 0
    assert str(tiny) in capsys.readouterr().out
    assert main(["data", "make-lines", "--size", "nope"]) == 2
    assert "valid sizes: tiny, small, full" in capsys.readouterr().err
