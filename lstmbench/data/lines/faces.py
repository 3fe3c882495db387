"""Typefaces for generated lines: the faces documents of the UW3 era were set in, found among
the installed font packages, or the files and folders a user names.

A face is a role (e.g. `times-bold`) with every installed file that can play it. Lines draw a
face first, then one of its files, so a role weighs the same however many equivalent packages
are installed. A role with no installed file falls back to the matplotlib face closest to it,
with a warning: generation always works, with less realistic type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import matplotlib

from lstmbench.errors import UserError

FONT_SUFFIXES = (".ttf", ".otf")
# Where font packages put their files (Debian and most other systems), searched recursively.
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
)
PACKAGES = "fonts-urw-base35, fonts-liberation or fonts-freefont-ttf"

# role -> (file stems of equivalent faces from maintained packages, matplotlib fallback).
# URW base35 (Nimbus) are the PostScript standard faces; Liberation and FreeFont share
# their metrics. Typewriter text in UW3 is Courier; report text mostly Times.
ERA_FACES: dict[str, tuple[tuple[str, ...], str]] = {
    "courier-regular": (
        ("NimbusMonoPS-Regular", "LiberationMono-Regular", "FreeMono"),
        "DejaVuSansMono",
    ),
    "courier-bold": (
        ("NimbusMonoPS-Bold", "LiberationMono-Bold", "FreeMonoBold"),
        "DejaVuSansMono-Bold",
    ),
    "courier-italic": (
        ("NimbusMonoPS-Italic", "LiberationMono-Italic", "FreeMonoOblique"),
        "DejaVuSansMono-Oblique",
    ),
    "times-regular": (
        ("NimbusRoman-Regular", "LiberationSerif-Regular", "FreeSerif"),
        "STIXGeneral",
    ),
    "times-bold": (("NimbusRoman-Bold", "LiberationSerif-Bold", "FreeSerifBold"), "STIXGeneralBol"),
    "times-italic": (
        ("NimbusRoman-Italic", "LiberationSerif-Italic", "FreeSerifItalic"),
        "STIXGeneralItalic",
    ),
    "helvetica-regular": (
        ("NimbusSans-Regular", "LiberationSans-Regular", "FreeSans"),
        "DejaVuSans",
    ),
    "helvetica-bold": (
        ("NimbusSans-Bold", "LiberationSans-Bold", "FreeSansBold"),
        "DejaVuSans-Bold",
    ),
    "helvetica-italic": (
        ("NimbusSans-Italic", "LiberationSans-Italic", "FreeSansOblique"),
        "DejaVuSans-Oblique",
    ),
}
# The faces of generator version 1, all shipped with matplotlib: `--font classic`.
CLASSIC_FACES = (
    "DejaVuSerif",
    "DejaVuSerif-Bold",
    "DejaVuSerif-Italic",
    "DejaVuSans",
    "DejaVuSans-Bold",
    "DejaVuSans-Oblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Bold",
    "STIXGeneral",
    "STIXGeneralBol",
    "STIXGeneralItalic",
    "STIXGeneralBolIta",
)
FAMILIES = ("courier", "times", "helvetica")
GROUPS = {
    "era": tuple(ERA_FACES),
    **{f: tuple(r for r in ERA_FACES if r.startswith(f + "-")) for f in FAMILIES},
}


@dataclass
class FaceSet:
    """The faces lines are drawn in: (name, files) each, and what was missing."""

    faces: list[tuple[str, list[str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def files(self) -> list[str]:
        """Every font file, in drawing order."""
        return [path for _, paths in self.faces for path in paths]

    def summary(self) -> dict[str, list[str]]:
        """face name -> the file names it draws from (for logs and a set's metadata)."""
        return {name: [Path(p).name for p in paths] for name, paths in self.faces}

    def describe(self) -> str:
        """One line: each face with the files found for it."""
        return "; ".join(
            f"{name} ({', '.join(Path(p).stem for p in paths)})" for name, paths in self.faces
        )


def matplotlib_font(stem: str) -> str:
    """The path of a font shipped with matplotlib, by its file stem."""
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{stem}.ttf")


@lru_cache(maxsize=8)
def installed_fonts(directories: tuple[str, ...] = SYSTEM_FONT_DIRS) -> dict[str, str]:
    """lower-case file stem -> path of every font file under the font directories (the first
    found wins, in sorted order, so the choice is the same on every run)."""
    found: dict[str, str] = {}
    for directory in directories:
        root = Path(os.path.expanduser(directory))
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file():
                found.setdefault(path.stem.lower(), str(path))
    for path in sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf")):
        found.setdefault(path.stem.lower(), str(path))
    return found


def era_face(role: str, installed: dict[str, str], warnings: list[str]) -> tuple[str, list[str]]:
    """A role with its installed files, or its matplotlib fallback (with a warning)."""
    stems, fallback = ERA_FACES[role]
    paths = [installed[s.lower()] for s in stems if s.lower() in installed]
    if paths:
        return role, paths
    warnings.append(
        f"no {role} face installed (looked for {', '.join(stems)}); using {fallback} "
        f"instead: install {PACKAGES} for faces like the scans'"
    )
    return f"{role}~{fallback}", [matplotlib_font(fallback)]


def font_folder(path: Path) -> list[tuple[str, list[str]]]:
    """Each font file of a folder as a face of its own."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)
    if not files:
        raise UserError(
            f"font folder {path} holds no .ttf or .otf files; give a folder of font files"
        )
    return [(p.stem, [str(p)]) for p in files]


def resolve_faces(
    specs: tuple[str, ...] | list[str] = (), directories: tuple[str, ...] = SYSTEM_FONT_DIRS
) -> FaceSet:
    """The faces named by `specs` (default: every era face). Each entry is a font file, a
    folder of font files, a role or group (era, courier, times-bold, ..., classic), or the
    stem of an installed font file (e.g. LiberationSerif-Bold) under `directories`."""
    installed = installed_fonts(tuple(directories))
    result = FaceSet()
    for spec in specs or ("era",):
        path = Path(spec).expanduser()
        key = spec.lower()
        if key in GROUPS:
            result.faces += [era_face(r, installed, result.warnings) for r in GROUPS[key]]
        elif key in ERA_FACES:
            result.faces.append(era_face(key, installed, result.warnings))
        elif key == "classic":
            result.faces += [(s, [matplotlib_font(s)]) for s in CLASSIC_FACES]
        elif path.is_dir():
            result.faces += font_folder(path)
        elif path.suffix.lower() in FONT_SUFFIXES or "/" in spec:
            if not path.is_file():
                raise UserError(
                    f"font file or folder {spec} does not exist; give a .ttf or .otf file "
                    "or a folder of them"
                )
            result.faces.append((path.stem, [str(path)]))
        elif key in installed:
            result.faces.append((Path(installed[key]).stem, [installed[key]]))
        else:
            raise UserError(
                f"unknown face {spec!r}: give a font file, a folder of font files, one of "
                f"{', '.join([*GROUPS, 'classic'])}, a face such as {', '.join(ERA_FACES)}, "
                "or the name of an installed font file (e.g. LiberationSerif-Bold)"
            )
    seen: set[str] = set()
    unique = []
    for name, paths in result.faces:  # a face named twice is drawn as often as the others
        if name not in seen:
            seen.add(name)
            unique.append((name, paths))
    result.faces = unique
    return result
