"""A named offline model and how to build it, written whole or not at all."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Builder:
    name: str
    relative_dir: str
    make: Callable[[Path, Path], None]  # (target folder, models root)
    marker: str = "config.json"  # the file whose presence means "built"
    # Names the way the model is made; a folder whose pioneer_build.json records another
    # recipe was made the old way and is built again (a retrained demo replaces the old one).
    recipe: str = ""

    def built(self, models_root: Path) -> bool:
        folder = models_root / self.relative_dir
        if not (folder / self.marker).exists():
            return False
        return not self.recipe or recorded_recipe(folder) == self.recipe

    def ensure(self, models_root: Path) -> Path:
        if not self.built(models_root):
            self.build(models_root / self.relative_dir, models_root)
        return models_root / self.relative_dir

    def build(self, target: Path, models_root: Path) -> None:
        """Build into a staging folder beside `target`, then rename it into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            self.make(staging, models_root)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def recorded_recipe(folder: Path) -> str:
    try:
        info = json.loads((folder / "pioneer_build.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(info.get("recipe", "")) if isinstance(info, dict) else ""
