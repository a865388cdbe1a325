"""`source_with`: a lab's folder plus a shared module, as one source folder a target builds for its
own platform (its requirements.txt kept, so Lambda's wheels are chosen at build time)."""

from __future__ import annotations

from pathlib import Path

from lambdalab.course.paths import source_with


def test_source_with_holds_the_code_the_requirements_and_the_included_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LAMBDALAB_CACHE", str(tmp_path / "cache"))
    lab, shared = tmp_path / "tuning", tmp_path / "thumbnail.py"
    lab.mkdir()
    (lab / "resize.py").write_text("from thumbnail import make_thumbnail\n")
    (lab / "requirements.txt").write_text("pillow\n")
    shared.write_text("def make_thumbnail(data, size):\n    return data\n")

    folder = source_with(lab, (shared,))
    assert sorted(p.name for p in folder.iterdir()) == ["requirements.txt", "resize.py", "thumbnail.py"]
    assert source_with(lab, (shared,)) == folder  # same content, same folder

    shared.write_text("def make_thumbnail(data, size):\n    return data[:1]\n")
    changed = source_with(lab, (shared,))
    assert changed != folder and (changed / "thumbnail.py").read_text().endswith("data[:1]\n")
