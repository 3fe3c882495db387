"""Generated UW3-like lines: technical-report text in the faces of the era's documents,
degraded like scans, normalized to 48 px, written once to HDF5 shards and reused (keyed by
every parameter, the text and the font files).

Each line is drawn from its own random stream seeded by (seed, split, index), so a seed gives
the same lines whatever the number of worker processes. Train and test texts come from
disjoint parts of the corpus, so the test set measures reading, not remembering text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.corpus import ALPHABET, builtin_corpus, corpus_words, generated_token
from lstmbench.data.lines.dataset import LineDataset, train_test_sets
from lstmbench.data.lines.faces import FaceSet, resolve_faces
from lstmbench.data.lines.hyphenate import hyphenate
from lstmbench.data.lines.normalize import normalize_line
from lstmbench.data.lines.readers import RawLine, read_hdf5, write_hdf5
from lstmbench.data.lines.scan_effects import fade_start, print_effects
from lstmbench.errors import UserError

# Bump when a change alters the lines, so old caches are not reused. 2: the era's faces,
# report text with hyphenation, the codec of every character the text can produce. 3:
# augraphy's printing effects. 4: TeX's quotes drawn curly, faded line starts, full lines up
# to 100 characters.
GENERATOR_VERSION = 4
SHARD_LINES = 2000
TEST_SEGMENT_EVERY = 5  # every fifth stretch of the corpus is test text
SEGMENT_WORDS = 30
SPLITS = {"train": 0, "test": 1}
# Chances that a line ends inside its last word (where it can be broken: about half the time)
# and that it begins with the rest of a broken word. UW3's running text: about one line in
# eight ends in a hyphen (6 of the 50 lines in the sample).
HYPHEN_END = 0.4
HYPHEN_START = 0.1
# Chance that a line's first glyphs are faded and broken, as where a scan's light or a
# copier's toner falls off at the page's left margin (the UW3 sample's page shows it).
FADED_START = 0.25
# "classic": the hand-written scan alone; "augraphy": augraphy's printing effects first.
DEGRADATIONS = ("classic", "augraphy")


@dataclass(frozen=True)
class SizePreset:
    """How many lines of how many characters."""

    train: int
    test: int
    min_chars: int
    max_chars: int


PRESETS = {
    "tiny": SizePreset(train=240, test=60, min_chars=8, max_chars=24),
    "small": SizePreset(train=10000, test=1000, min_chars=10, max_chars=50),
    # UW3's longest lines run to 100 characters (5 of the 50 in the sample are over 80).
    "full": SizePreset(train=60000, test=3000, min_chars=10, max_chars=100),
}


@dataclass(frozen=True)
class GenerationParams:
    """Everything that determines the generated lines."""

    size: str = "small"
    seed: int = 0
    fonts: tuple[str, ...] = ()  # font files, folders or face names; empty: the era's faces
    corpus: str = ""  # corpus file path; empty: the built-in text
    # How lines are degraded: DEGRADATIONS; the strength of augraphy's printing effects.
    degradation: str = "augraphy"
    strength: float = 1.0

    def preset(self) -> SizePreset:
        """The size preset, refusing unknown names."""
        if self.size not in PRESETS:
            raise UserError(
                f"unknown uw3like size {self.size!r}; valid sizes: {', '.join(PRESETS)}"
            )
        return PRESETS[self.size]

    def check(self) -> None:
        """Refuse unknown sizes and degradations, and strengths outside [0, 1]."""
        self.preset()
        if self.degradation not in DEGRADATIONS:
            raise UserError(
                f"unknown degradation {self.degradation!r}; valid: {', '.join(DEGRADATIONS)}"
            )
        if not 0.0 <= self.strength <= 1.0:
            raise UserError(f"--strength must be within 0 and 1, got {self.strength:g}")

    def faces(self) -> FaceSet:
        """The faces to draw with (the era's by default), found on this machine."""
        return _faces(tuple(self.fonts))

    def font_paths(self) -> list[list[str]]:
        """The font files of each face, in drawing order."""
        return [paths for _, paths in self.faces().faces]

    def characters(self) -> str:
        """Every character the text can produce: the codec of the set includes them all,
        so a model trained on it has an output for each, seen or not in its lines."""
        found = set(ALPHABET)
        if self.corpus:
            found.update("".join(self.corpus_text().split()))
        return "".join(sorted(found))

    def corpus_text(self) -> str:
        """The text lines are drawn from."""
        if not self.corpus:
            return builtin_corpus()
        try:
            text = Path(self.corpus).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(
                f"cannot read corpus {self.corpus} ({error}); give a UTF-8 text file"
            ) from None
        if len(text.split()) < 2 * SEGMENT_WORDS * TEST_SEGMENT_EVERY:
            raise UserError(
                f"corpus {self.corpus} is too short; give at least "
                f"{2 * SEGMENT_WORDS * TEST_SEGMENT_EVERY} words of text"
            )
        return text

    def key(self) -> str:
        """A hash of the parameters and of the contents they name (fonts, corpus)."""
        digest = hashlib.sha256()
        fields = {**asdict(self), "version": GENERATOR_VERSION, "preset": asdict(self.preset())}
        fields["fonts"] = self.faces().summary()  # adding a face makes another set
        if self.corpus:  # its text is hashed below; the same text elsewhere is the same set
            fields["corpus"] = "file"
        digest.update(json.dumps(fields, sort_keys=True).encode())
        digest.update(self.corpus_text().encode())
        for path in self.faces().files():
            digest.update(_file_hash(path))
        return digest.hexdigest()[:16]


@lru_cache(maxsize=16)
def _faces(fonts: tuple[str, ...]) -> FaceSet:
    return resolve_faces(fonts)


@lru_cache(maxsize=256)
def _file_hash(path: str) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


def split_words(text: str) -> dict[str, list[list[str]]]:
    """The corpus words cut into stretches, each stretch train or test text."""
    words = corpus_words(text)
    stretches = [words[i : i + SEGMENT_WORDS] for i in range(0, len(words), SEGMENT_WORDS)]
    return {
        "train": [s for k, s in enumerate(stretches) if k % TEST_SEGMENT_EVERY != 1],
        "test": [s for k, s in enumerate(stretches) if k % TEST_SEGMENT_EVERY == 1],
    }


def line_text(rng: np.random.Generator, stretches: list[list[str]], preset: SizePreset) -> str:
    """A line of running text of min..max characters, with some numbers and formulas, at
    times beginning with the end of a hyphenated word or ending in the start of one."""
    target = int(rng.integers(preset.min_chars, preset.max_chars + 1))
    stretch = stretches[rng.integers(len(stretches))]
    position = int(rng.integers(len(stretch)))
    words: list[str] = []
    while len(" ".join(words)) < target:
        if rng.random() < 0.1:
            words.append(generated_token(rng))
        else:
            words.append(stretch[position % len(stretch)])
            position += 1
    while len(words) > 1 and len(" ".join(words)) > preset.max_chars:
        words.pop()  # whole words only, as a printed line ends
    if len(words) > 1 and rng.random() < HYPHEN_START:
        broken = hyphenate(words[0], rng)
        if broken and len(" ".join([broken[1], *words[1:]])) >= preset.min_chars:
            words[0] = broken[1]
    if len(words) > 1 and rng.random() < HYPHEN_END:
        broken = hyphenate(words[-1], rng)  # the line ends inside its last word
        if broken and len(" ".join([*words[:-1], broken[0]])) >= preset.min_chars:
            words[-1] = broken[0]
    text = " ".join(words)[: preset.max_chars]
    if rng.random() < 0.03:
        text = text.upper()
    return text


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def printed_form(text: str) -> str:
    """The characters a transcript stands for on the page: UW3's transcripts write TeX's
    quotes, `` for an opening and '' for a closing curly quote."""
    return text.replace("``", "\u201c").replace("''", "\u201d")


def render_text(text: str, font: ImageFont.FreeTypeFont, tracking: float, spacing: float):
    """Ink image (float32 in [0, 1]) of one transcript's printed form, letter- and
    word-spaced as given."""
    text = printed_form(text)
    ascent, descent = font.getmetrics()
    pad = ascent // 3
    advances = [font.getlength(c) * (spacing if c == " " else 1.0) + tracking for c in text]
    width = int(np.ceil(sum(advances))) + 2 * pad
    canvas = Image.new("L", (width, ascent + descent + 2 * pad), 0)
    draw = ImageDraw.Draw(canvas)
    x = float(pad)
    for char, advance in zip(text, advances, strict=True):
        draw.text((x, pad), char, fill=255, font=font)
        x += advance
    return np.asarray(canvas, dtype=np.float32) / 255.0


def degrade(ink: np.ndarray, rng: np.random.Generator, params: GenerationParams) -> np.ndarray:
    """A scan-like grey image (paper 255): the printing effects of the set's degradation
    (augraphy's, scan_effects.py), then the scan's slight skew and warp, blur, noise and
    thresholding."""
    if rng.random() < FADED_START:
        ink = fade_start(ink, rng)
    if params.degradation == "augraphy":
        page = (255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)
        ink = 1.0 - print_effects(page, rng, params.strength).astype(np.float32) / 255.0
    height, width = ink.shape
    angle = float(np.clip(rng.normal(0.0, 0.6), -2.0, 2.0))
    ink = ndimage.rotate(ink, angle, reshape=True, order=1)
    amplitude = rng.uniform(0.0, 0.03) * height
    period = rng.uniform(300, 1200)
    phase = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0 : ink.shape[0], 0 : ink.shape[1]].astype(np.float32)
    rows += amplitude * np.sin(2 * np.pi * columns / period + phase)
    ink = ndimage.map_coordinates(ink, [rows, columns], order=1)
    ink = ndimage.gaussian_filter(ink, rng.uniform(0.3, 1.1))
    ink = ink + rng.normal(0.0, rng.uniform(0.0, 0.12), ink.shape)
    if rng.random() < 0.7:  # most UW3 lines are binarized: threshold at a jittered level
        ink = (ink > rng.uniform(0.35, 0.6)).astype(np.float32)
    return (255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)


def make_line(
    params: GenerationParams, split: str, index: int, stretches, fonts
) -> tuple[str, np.ndarray, np.ndarray]:
    """(text, scan-like image, normalized 48 px image) of one generated line."""
    rng = np.random.default_rng([params.seed, SPLITS[split], index])
    text = line_text(rng, stretches, params.preset())
    face = fonts[rng.integers(len(fonts))]  # a face, then one of its equivalent files
    font = _font(face[rng.integers(len(face))], int(rng.integers(24, 45)))
    tracking = rng.uniform(-0.02, 0.08) * font.size if rng.random() < 0.3 else 0.0
    scan = degrade(render_text(text, font, tracking, rng.uniform(0.8, 1.5)), rng, params)
    return text, scan, normalize_line(scan)


def _make_shard(job) -> tuple[str, int]:
    params, split, start, count, path = job
    fonts = params.font_paths()
    stretches = split_words(params.corpus_text())[split]
    lines = []
    for index in range(start, start + count):
        text, _, normalized = make_line(params, split, index, stretches, fonts)
        lines.append(RawLine(f"{split}-{index:06d}", normalized, text, normalized=True))
    write_hdf5(Path(path), lines, normalized=True)
    return path, count


def default_cache() -> Path:
    """Where generated lines are kept: $XDG_CACHE_HOME/lstmbench/uw3like (or ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmbench" / "uw3like"


def dataset_directory(params: GenerationParams, cache: Path | None = None) -> Path:
    """The shard directory of a parameter set."""
    return Path(cache or default_cache()) / f"{params.size}-seed{params.seed}-{params.key()}"


def generate(
    params: GenerationParams, cache: Path | None = None, workers: int = 1, log=print
) -> Path:
    """Write the lines' shards (once; reused when present) and return their directory."""
    params.check()
    target = dataset_directory(params, cache)
    if (target / "meta.json").is_file():
        return target
    preset = params.preset()
    faces = params.faces()
    for warning in faces.warnings:  # before the work, which can take many minutes
        log(f"warning: {warning}")
    partial = target.with_name(target.name + f".part{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    jobs = []
    for split, count in (("train", preset.train), ("test", preset.test)):
        for shard, start in enumerate(range(0, count, SHARD_LINES)):
            path = partial / f"{split}-{shard:03d}.h5"
            jobs.append((params, split, start, min(SHARD_LINES, count - start), str(path)))
    started = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            done = sum(count for _, count in pool.map(_make_shard, jobs))
    else:
        done = sum(_make_shard(job)[1] for job in jobs)
    seconds = time.perf_counter() - started
    meta = {
        "params": asdict(params),
        "key": params.key(),
        "train": preset.train,
        "test": preset.test,
        "seconds": seconds,
        "lines_per_second": done / seconds,
        "workers": workers,
        "faces": faces.summary(),
        "face_warnings": faces.warnings,
        "characters": params.characters(),
    }
    (partial / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        partial.rename(target)  # appears whole or not at all
    except OSError:  # another process finished the same set first: theirs is identical
        shutil.rmtree(partial, ignore_errors=True)
    log(
        f"generated {done} lines in {seconds:.1f} s ({done / seconds:.0f} lines/s, "
        f"{workers} worker(s)) into {target}; faces: {faces.describe()}"
    )
    return target


def read_generated(directory: Path, split: str) -> list[RawLine]:
    """The lines of one split of a generated set."""
    shards = sorted(Path(directory).glob(f"{split}-*.h5"))
    if not shards:
        raise UserError(
            f"no {split} shards in {directory}; regenerate with `lstmbench data make-lines`"
        )
    lines = []
    for shard in shards:
        report = read_hdf5(shard)
        if report.skipped:
            raise UserError(
                f"generated shard {shard} is damaged ({report.summary()}); "
                f"delete {directory} and generate it again"
            )
        lines += report.lines
    return lines


def parse_argument(argument: str) -> GenerationParams:
    """GenerationParams for `uw3like:SIZE` or `uw3like:SIZE:SEED`."""
    size, _, seed = (argument or "small").partition(":")
    try:
        return GenerationParams(size=size, seed=int(seed) if seed else 0)
    except ValueError:
        raise UserError(f"uw3like seed must be an integer, got {seed!r}") from None


def load_uw3like(argument: str, cache: str | None, validation: int = 0, seed: int = 0):
    """(train, test) generated lines: `uw3like:SIZE[:SEED]`, or a make-lines directory."""
    if argument and Path(argument).is_dir():
        directory = Path(argument)
    else:
        params = parse_argument(argument)
        params.preset()
        directory = generate(params, Path(cache) if cache else None)
    sets = []
    for split in ("train", "test"):
        lines = read_generated(directory, split)
        texts = [line.text for line in lines]
        images = [line.image for line in lines]
        sets.append(LineDataset(images, texts, Codec.from_texts(texts), [x.name for x in lines]))
    characters = generated_characters(directory)
    test = sets[1] if validation <= 0 else None
    return train_test_sets(sets[0], test, validation, seed, characters)


def generated_characters(directory: Path) -> str:
    """The characters a generated set's text can produce ("" for sets made before they were
    recorded: their codec is that of their training lines)."""
    try:
        return str(json.loads((Path(directory) / "meta.json").read_text()).get("characters", ""))
    except (OSError, ValueError):
        return ""


def is_generated(argument: str, cache: str | None = None) -> bool:
    """Whether `uw3like:ARGUMENT` is on disk already (a make-lines directory, or the cache)."""
    if argument and Path(argument).is_dir():
        return True
    params = parse_argument(argument)
    params.preset()
    return (dataset_directory(params, Path(cache) if cache else None) / "meta.json").is_file()


def first_lines(params: GenerationParams, count: int, split: str) -> list[tuple[str, np.ndarray]]:
    """The first `count` lines of a split of a set, (text, normalized image) each, made in
    memory: each line depends only on (seed, split, index), so these are exactly the lines
    the whole set begins with."""
    fonts = params.font_paths()
    words = split_words(params.corpus_text())[split]
    lines = (make_line(params, split, index, words, fonts) for index in range(count))
    return [(text, image) for text, _, image in lines]


def sample_lines(params: GenerationParams, count: int, split: str = "train") -> list[np.ndarray]:
    """The first `count` normalized images of a split of a set (first_lines)."""
    return [image for _, image in first_lines(params, count, split)]


def sample_uw3like(argument: str, train_lines: int, test_lines: int):
    """(train, test): the first lines of each split of `uw3like:SIZE[:SEED]` (first_lines),
    a fair sample of its widths without writing all of it (the full set takes many minutes
    to make)."""
    params = parse_argument(argument)
    preset = params.preset()
    sets = []
    for split, count in (("train", train_lines), ("test", test_lines)):
        count = max(1, min(count, getattr(preset, split)))
        texts, images = zip(*first_lines(params, count, split), strict=True)
        sets.append(LineDataset(list(images), list(texts), Codec.from_texts(texts)))
    return train_test_sets(sets[0], sets[1], 0, 0, params.characters())
