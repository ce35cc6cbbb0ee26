#!/usr/bin/env bash
# Download the wheels bench/encoder_gpu.py needs on a GPU machine that has torch, transformers,
# numpy, safetensors and peft but no network and none of the packages below. The folder then
# travels with the working tree (var/ is git-ignored, so it must be carried explicitly; ~4 MB,
# well under the 64 MiB carry limit) and the device command installs from it offline:
#
#   python -m pip install --no-index --find-links var/gpu-wheels gliner2 pydantic \
#     disentangled-flash && python bench/encoder_gpu.py --json $OUT/encoder_gpu.json
#
# Usage: bench/gpu_bundle.sh [FOLDER]   (default var/gpu-wheels)
set -euo pipefail

dest="${1:-var/gpu-wheels}"
pip="${PIP:-.venv/bin/python -m pip}"
mkdir -p "$dest"

# gliner2 imports requests/urllib3 at import time (its API client) and pydantic needs a recent
# typing_extensions: the device image may lack them (transformers 5 no longer pulls requests),
# so they come along; pip keeps what is already installed when it satisfies the pins.
wheels=(
    gliner2==2.1.0
    pydantic==2.14.4
    pydantic_core==2.50.5
    annotated-types==0.8.0
    typing-inspection==0.4.5
    disentangled-flash==1.1.1
    typing_extensions
    requests
    urllib3
    idna
    certifi
    charset-normalizer
    tqdm
)
for wheel in "${wheels[@]}"; do
    # One at a time, so a wheel missing in cp312/manylinux form is named, not fatal to the rest.
    if ! $pip download --quiet --dest "$dest" --only-binary=:all: --no-deps \
        --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform any "$wheel"; then
        echo "MISSING: no cp312 manylinux x86_64 (or pure-Python) wheel for $wheel" >&2
    fi
done
ls -l "$dest"
du -sh "$dest"
