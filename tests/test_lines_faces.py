"""Faces for generated lines: the era's faces found or replaced with a warning, files,
folders and names a user gives, and the set's key following its faces."""

import json
import shutil

import pytest

from lstmbench.cli.main import main
from lstmbench.data.lines.faces import CLASSIC_FACES, ERA_FACES, matplotlib_font, resolve_faces
from lstmbench.data.lines.generate import GenerationParams, make_line, split_words
from lstmbench.errors import UserError


def test_a_missing_era_face_falls_back_with_a_warning(tmp_path):
    shutil.copy(matplotlib_font("DejaVuSansMono"), tmp_path / "NimbusMonoPS-Regular.ttf")
    faces = resolve_faces((), directories=(str(tmp_path),))
    names = [name for name, _ in faces.faces]
    assert len(names) == len(ERA_FACES)
    assert names[0] == "courier-regular"  # found in the folder searched
    assert faces.faces[0][1] == [str(tmp_path / "NimbusMonoPS-Regular.ttf")]
    assert "times-regular~STIXGeneral" in names  # the others: matplotlib's nearest face
    assert len(faces.warnings) == len(ERA_FACES) - 1
    assert "no times-bold face installed" in " ".join(faces.warnings)
    assert "fonts-urw-base35" in faces.warnings[0]
    assert all(path.endswith(".ttf") for path in faces.files())


def test_faces_by_file_folder_group_and_installed_name(tmp_path):
    for stem in ("A", "B"):
        shutil.copy(matplotlib_font("DejaVuSerif"), tmp_path / f"{stem}.ttf")
    (tmp_path / "notes.txt").write_text("not a font")
    assert [n for n, _ in resolve_faces((str(tmp_path),)).faces] == ["A", "B"]
    single = resolve_faces((str(tmp_path / "B.ttf"),))
    assert single.faces == [("B", [str(tmp_path / "B.ttf")])]
    assert [n for n, _ in resolve_faces(("classic",)).faces] == list(CLASSIC_FACES)
    times = resolve_faces(("times", "times-bold"), directories=(str(tmp_path),))
    assert [n.split("~")[0] for n, _ in times.faces] == [
        "times-regular",
        "times-bold",
        "times-italic",
    ]  # named twice, drawn once
    installed = resolve_faces(("dejavusans-bold",), directories=(str(tmp_path),))
    assert installed.faces[0][1] == [matplotlib_font("DejaVuSans-Bold")]


def test_bad_faces_are_one_clear_message(tmp_path):
    with pytest.raises(UserError, match="does not exist; give a .ttf or .otf file or a folder"):
        resolve_faces((str(tmp_path / "missing" / "fonts"),))
    with pytest.raises(UserError, match="holds no .ttf or .otf files"):
        resolve_faces((str(tmp_path),))
    with pytest.raises(UserError, match="unknown face 'Garamondish'.*times-bold"):
        resolve_faces(("Garamondish",))


def test_make_lines_refuses_a_bad_font_option(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    assert main(["data", "make-lines", "--size", "tiny", "--font", str(missing)]) == 2
    assert f"font file or folder {missing} does not exist" in capsys.readouterr().err
    assert main(["data", "make-lines", "--size", "tiny", "--font", "Futurish"]) == 2
    assert "unknown face 'Futurish'" in capsys.readouterr().err


def test_faces_key_the_set_and_draw_from_the_faces_named(tmp_path):
    times = GenerationParams("tiny", fonts=("times",))
    more = GenerationParams("tiny", fonts=("times", "courier"))
    assert times.key() != more.key() != GenerationParams("tiny").key()
    assert GenerationParams("tiny", fonts=("classic",)).key() != GenerationParams("tiny").key()
    shutil.copy(matplotlib_font("DejaVuSansMono"), tmp_path / "Mono.ttf")
    params = GenerationParams("tiny", fonts=(str(tmp_path),))
    assert params.font_paths() == [[str(tmp_path / "Mono.ttf")]]
    words = split_words(params.corpus_text())
    text, _, image = make_line(params, "train", 3, words["train"], params.font_paths())
    again = make_line(params, "train", 3, words["train"], params.font_paths())
    assert text == again[0] and (image == again[2]).all() and image.shape[0] == 48


def test_a_generated_set_records_its_faces_and_characters(tmp_path):
    from lstmbench.data.lines.generate import generate

    messages = []
    params = GenerationParams("tiny", 5, fonts=(matplotlib_font("DejaVuSerif"),))
    directory = generate(params, tmp_path, log=messages.append)
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["faces"] == {"DejaVuSerif": ["DejaVuSerif.ttf"]}
    assert meta["face_warnings"] == []
    assert set(meta["characters"]) >= set("`'[]§")
    assert "faces: DejaVuSerif (DejaVuSerif)" in messages[-1]
