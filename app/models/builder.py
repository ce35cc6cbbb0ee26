"""A named offline model and how to build it, written whole or not at all."""

from __future__ import annotations

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

    def built(self, models_root: Path) -> bool:
        return (models_root / self.relative_dir / self.marker).exists()

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
