"""Where a model's weights are, and whether this machine can load them. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.protocol import quoted

Availability = Literal["available", "missing", "unreachable"]


@dataclass(frozen=True)
class WeightsLocation:
    status: Availability
    path: str | None  # a local directory to load from, when available or downloadable
    message: str


def locate(
    *, local_dir: str | None, hub_id: str | None, allow_downloads: bool, model_id: str
) -> WeightsLocation:
    if local_dir is not None:
        if (Path(local_dir) / "config.json").is_file():
            return WeightsLocation("available", local_dir, "weights on local disk")
        return WeightsLocation(
            "missing",
            None,
            f"Model {quoted(model_id)} has no weights at {local_dir}. Build the offline models "
            "with `make models` (python -m app.models build), or fix weights.local_dir in "
            "the catalog.",
        )
    assert hub_id is not None
    cached = _hub_cache_dir(hub_id)
    if cached is not None:
        return WeightsLocation("available", cached, "weights in the local hub cache")
    if allow_downloads:
        return WeightsLocation("available", None, "downloaded from the hub on first use")
    return WeightsLocation(
        "unreachable",
        None,
        f"Model {quoted(model_id)} is a hub model ({hub_id}) that is not in the local cache, and "
        "hub downloads are off (hub.allow_downloads: false). On a machine with network run "
        f"`hf download {hub_id}`, or set hub.allow_downloads: true, or point the catalog "
        "entry at a local_dir.",
    )


def _hub_cache_dir(hub_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(hub_id, local_files_only=True)
    except Exception:  # not cached (or no hub client): not loadable offline
        return None
