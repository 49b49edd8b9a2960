"""utils/packages.package_dir: the one lookup of files shipped in installed packages (dlib's predictor, MTCNN's
weights, the bundled ImageNet checkpoints), found without importing the package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deepdetect.faces import landmarks
from deepdetect.utils.packages import package_dir


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> Path:
    """A package whose __init__ fails if run, holding `files` (relative paths)."""
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("raise RuntimeError('imported')\n")
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def test_finds_a_package_folder_without_importing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _fake_package(tmp_path, "dd_fake_data_pkg", {"data/w.bin": b"x"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert package_dir("dd_fake_data_pkg") == folder
    assert (package_dir("dd_fake_data_pkg") / "data" / "w.bin").read_bytes() == b"x"
    assert "dd_fake_data_pkg" not in sys.modules


@pytest.mark.parametrize("name", ["dd_no_such_package", "dd_no_such_package.sub", "os", ""])
def test_missing_packages_and_plain_modules_give_none(name: str) -> None:
    assert package_dir(name) is None


def test_landmarks_predictor_found_through_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The predictor lookup follows package_dir: a package without the file is a clear error, with it a path."""
    monkeypatch.delitem(sys.modules, "face_recognition_models", raising=False)
    folder = _fake_package(tmp_path, "face_recognition_models", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(landmarks.LandmarksUnavailable, match="missing"):
        landmarks.predictor_path()
    (folder / "models").mkdir()
    (folder / "models" / landmarks.PREDICTOR_FILE).write_bytes(b"")
    assert landmarks.predictor_path() == folder / "models" / landmarks.PREDICTOR_FILE
