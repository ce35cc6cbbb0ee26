"""The offline model builders: deterministic, loadable, and never half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.models import BUILDERS
from app.models.__main__ import main
from app.models.gliner2_builders import TINY


def digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_build_is_deterministic(tmp_path: Path) -> None:
    TINY.build(tmp_path / "a", tmp_path)
    TINY.build(tmp_path / "b", tmp_path)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_cli_builds_missing_and_skips_present(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    main(["build", "--out", str(tmp_path), "--only", "tiny-job"])
    assert (tmp_path / "gliner2-tiny-test" / "config.json").exists()  # its base, built first
    assert (tmp_path / "jobs" / "job_tiny_ner01" / "config.json").exists()
    main(["build", "--out", str(tmp_path), "--only", "tiny-job"])
    assert "present" in capsys.readouterr().out


def test_job_checkpoint_differs_from_its_base(tmp_path: Path) -> None:
    main(["build", "--out", str(tmp_path), "--only", "tiny-encoder", "tiny-job"])
    assert digest(tmp_path / "gliner2-tiny-test") != digest(tmp_path / "jobs" / "job_tiny_ner01")


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(target: Path, root: Path) -> None:
        (target / "config.json").write_text("{}")
        raise RuntimeError("boom")

    builder = type(TINY)("broken", "broken", broken)
    with pytest.raises(RuntimeError):
        builder.build(tmp_path / "broken", tmp_path)
    assert not (tmp_path / "broken").exists()
    assert list(tmp_path.iterdir()) == []


def test_demo_builds_on_the_pretrained_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole demo path, fine-tuning included, on two steps instead of hundreds."""
    from gliner2 import GLiNER2

    monkeypatch.setenv("PIONEER_DEMO_TRAIN_STEPS", "2")
    BUILDERS["demo-encoder"].build(tmp_path / "demo", tmp_path)
    info = (tmp_path / "demo" / "pioneer_build.json").read_text()
    assert '"train_steps": 2' in info
    model = GLiNER2.from_pretrained(str(tmp_path / "demo"))
    assert model.encoder.config.hidden_size == 384  # all-MiniLM-L6-v2
