"""Read text lines with transcripts: ocropus-style directories, list files and HDF5 files.

Directory convention (ocropy, kraken, calamari, tesstrain): `NAME.png` or `NAME.bin.png` with
its transcript in `NAME.gt.txt`. A list file names one image per line (relative to the list
file). HDF5 layout: `images` (variable-length uint8, each image flattened row by row), `dims`
(N x 2: height, width) and `transcripts` (UTF-8 strings); the file attribute `normalized`
says the images are already 48 px lines (ink 255 on 0). Bad entries are skipped and reported
by name, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lstmbench.data.lines.codec import normalize_text
from lstmbench.errors import UserError

IMAGE_SUFFIXES = (".bin.png", ".nrm.png", ".png")  # preferred first: binarized, then others
TRANSCRIPT_SUFFIX = ".gt.txt"


@dataclass
class RawLine:
    """One line as read: its name, its pixels (grey, any polarity) and its transcript."""

    name: str
    image: np.ndarray
    text: str
    normalized: bool = False  # True when the pixels are already a 48 px line, ink 255


@dataclass
class ReadReport:
    """The lines read and the entries skipped, with the reason for each."""

    lines: list[RawLine] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, name: str, reason: str) -> None:
        """Record a bad entry."""
        self.skipped.append((name, reason))

    def summary(self, limit: int = 10) -> str:
        """One paragraph naming the skipped entries (the first `limit`) and their count."""
        if not self.skipped:
            return f"{len(self.lines)} lines read"
        shown = "; ".join(f"{name}: {reason}" for name, reason in self.skipped[:limit])
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"{len(self.lines)} lines read, {len(self.skipped)} skipped ({shown}{more})"


def read_image(path: Path) -> np.ndarray:
    """A grey uint8 image; transparent pixels count as white paper."""
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(paper, image.convert("RGBA"))
        return np.asarray(image.convert("L"))


def line_stem(path: Path) -> str | None:
    """The NAME of NAME.png / NAME.bin.png / NAME.nrm.png, or None for other files."""
    for suffix in IMAGE_SUFFIXES:
        if path.name.endswith(suffix):
            return str(path)[: -len(suffix)]
    return None


def _read_entry(stem: str, image_path: Path, report: ReadReport) -> None:
    name = Path(stem).name
    transcript = Path(stem + TRANSCRIPT_SUFFIX)
    if not transcript.is_file():
        report.skip(name, f"no transcript {transcript.name}")
        return
    try:
        text = normalize_text(transcript.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        report.skip(name, f"unreadable transcript ({error.__class__.__name__})")
        return
    if not text:
        report.skip(name, "empty transcript")
        return
    try:
        image = read_image(image_path)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        report.skip(name, f"unreadable image {image_path.name} ({error.__class__.__name__})")
        return
    if image.size == 0 or int(image.max()) == int(image.min()):
        report.skip(name, "empty image (no ink)")
        return
    report.lines.append(RawLine(name, image, text))


def _preference(path: Path) -> int:
    return next(i for i, suffix in enumerate(IMAGE_SUFFIXES) if path.name.endswith(suffix))


def _images_by_stem(paths: list[Path]) -> dict[str, Path]:
    chosen: dict[str, Path] = {}
    for path in sorted(paths):
        stem = line_stem(path)
        if stem is not None and (
            stem not in chosen or _preference(path) < _preference(chosen[stem])
        ):
            chosen[stem] = path
    return chosen


def read_directory(directory: Path) -> ReadReport:
    """Every NAME(.bin).png + NAME.gt.txt pair in a directory (not recursive)."""
    report = ReadReport()
    images = _images_by_stem([p for p in directory.iterdir() if p.is_file()])
    for stem, image_path in sorted(images.items()):
        _read_entry(stem, image_path, report)
    for transcript in sorted(directory.glob("*" + TRANSCRIPT_SUFFIX)):
        stem = str(transcript)[: -len(TRANSCRIPT_SUFFIX)]
        if stem not in images:
            report.skip(Path(stem).name, "transcript without image")
    return report


def read_list(list_file: Path) -> ReadReport:
    """The lines whose images a list file names, one path per line (relative to the file)."""
    report = ReadReport()
    try:
        entries = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(
            f"cannot read line list {list_file} ({error}); give a text file "
            "with one image path per line"
        ) from None
    for entry in entries:
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if Path(entry).is_absolute() else list_file.parent / entry
        stem = line_stem(path)
        if stem is None:
            report.skip(entry, "not a .png line image")
        elif not path.is_file():
            report.skip(entry, "image file does not exist")
        else:
            _read_entry(stem, path, report)
    return report


def read_hdf5(path: Path) -> ReadReport:
    """The lines of an HDF5 file (images, dims, transcripts), by index."""
    import h5py

    report = ReadReport()
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("images", "dims", "transcripts") if k not in f]
            if missing:
                raise UserError(
                    f"HDF5 line file {path} lacks dataset(s) {', '.join(missing)}; it needs "
                    "images (flattened uint8), dims (N x 2: height, width) and transcripts"
                )
            normalized = bool(f.attrs.get("normalized", False))
            images, dims = f["images"][:], f["dims"][:]
            texts = f["transcripts"].asstr()[:]
    except OSError as error:
        raise UserError(f"HDF5 line file {path} is unreadable or corrupt ({error})") from None
    if not (len(images) == len(dims) == len(texts)):
        raise UserError(
            f"HDF5 line file {path}: {len(images)} images, {len(dims)} dims and "
            f"{len(texts)} transcripts; the three must have one entry per line"
        )
    for index, (pixels, (height, width), text) in enumerate(zip(images, dims, texts, strict=True)):
        name = f"{path.name}[{index}]"
        text = normalize_text(text)
        if not text:
            report.skip(name, "empty transcript")
        elif height < 1 or width < 1 or len(pixels) != height * width:
            report.skip(name, f"{len(pixels)} pixels do not match dims {height} x {width}")
        elif int(pixels.max()) == int(pixels.min()):
            report.skip(name, "empty image (no ink)")
        else:
            image = np.asarray(pixels, dtype=np.uint8).reshape(int(height), int(width))
            report.lines.append(RawLine(name, image, text, normalized))
    return report


def write_hdf5(path: Path, lines: list[RawLine], normalized: bool) -> None:
    """Write lines in the HDF5 layout read_hdf5 reads."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["normalized"] = normalized
        images = f.create_dataset("images", (len(lines),), dtype=h5py.vlen_dtype(np.uint8))
        for index, line in enumerate(lines):
            images[index] = np.ascontiguousarray(line.image, dtype=np.uint8).ravel()
        f["dims"] = np.array([line.image.shape for line in lines], dtype=np.int64).reshape(-1, 2)
        f.create_dataset(
            "transcripts", data=[line.text for line in lines], dtype=h5py.string_dtype("utf-8")
        )


def read_lines(path: str | Path) -> ReadReport:
    """Lines from a directory, a list file or an HDF5 file (by what the path is)."""
    path = Path(path)
    if path.is_dir():
        return read_directory(path)
    if not path.exists():
        raise UserError(
            f"line data {path} does not exist; give a directory of NAME.png + NAME.gt.txt, "
            "a list file of image paths, or an .h5 file"
        )
    if path.suffix in (".h5", ".hdf5"):
        return read_hdf5(path)
    return read_list(path)
