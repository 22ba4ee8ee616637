# caec developer commands. `make install` then `make test` on a fresh machine (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this project's machines; a CUDA machine may install any torch>=2.2.
TORCH_SPEC ?= torch==2.13.0
KODAK ?= ../shared/data/kodak
TRAIN_DATA ?= ../shared/data/train

.PHONY: install test test-fast lint bench graphs results fuzz huge model-card web-load serve clean

install: $(BIN)/caec

$(BIN)/caec: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check cae_codec tests tools research
	$(BIN)/ruff format --check cae_codec tests tools research
	$(BIN)/mypy

# caec, OpenJPEG and CompressAI's bmshj2018-factorized (the learned peer the speed budget is set
# against, docs/benchmark.md), all on 2 threads. compressai goes in without its dependencies: they
# would replace this torch and numpy (it pins numpy<2, and pulls torchvision and a CUDA torch);
# tools/speed.py stands in for the few it imports and the timed model never runs.
COMPRESSAI_SPEC ?= compressai==1.2.8
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m pip install -q --no-deps "$(COMPRESSAI_SPEC)"
	$(BIN)/python -m tools.speed --dataset $(KODAK) --threads 2 --out docs/bench.json $(BENCH_ARGS)
	$(BIN)/python -m tools.startup --image $(KODAK)/kodim23.png --out docs/startup.json

# The shipped models' inference graphs (cae_codec/runtime.py), exported from their weights; --check
# fails when a shipped graph is not what the weights export to (GRAPHS_ARGS=--check)
GRAPHS_ARGS ?=
graphs: install
	$(BIN)/python -m tools.export_graphs $(GRAPHS_ARGS)

# Published curves drawn beside ours: CompressAI's 8-bit-decoded runs where they exist (our metrics are on 8-bit
# reconstructions too) and BPG 4:4:4. Missing files are simply left out.
ANCHORS ?= ../shared/data/anchors/compressai_kodak
RESULTS_REFS ?= $(wildcard $(ANCHORS)/8bit-decoded/compressai-bmshj2018-factorized_mse_ans_cuda.json \
	$(ANCHORS)/8bit-decoded/compressai-bmshj2018-hyperprior_mse_ans_cuda.json $(ANCHORS)/bpg_444_x265_ycbcr.json)
# extra bdrate options, e.g. RESULTS_ARGS="--limit 3 --rates 0.25,1" for a quick check of the pipeline
RESULTS_ARGS ?=

results: install
	$(BIN)/caec bdrate --dataset $(KODAK) --anchor jpeg2000 --codecs caec,jpeg,jpeg2000,webp,avif,jpegxl \
		$(addprefix --reference ,$(RESULTS_REFS)) --out docs/results/kodak --plot docs/rd_kodak.png \
		--markdown docs/results.md --force $(RESULTS_ARGS)

# Hostile .cae files against the decoder (docs/robustness.md): at least FUZZ_CASES drawn cases plus
# exhaustive truncations and header bit flips; failing inputs are saved to fuzz-crashes/.
FUZZ_CASES ?= 10000
fuzz: install
	$(BIN)/python tools/fuzz.py --cases $(FUZZ_CASES)

# Peak memory and time of caec encode / decode on synthesized huge photos (docs/robustness.md).
HUGE_SIZES ?= 12 48 100
huge: install
	$(BIN)/python tools/huge.py --sizes $(HUGE_SIZES) --kodak $(KODAK)

# The default model's Kodak table in its card (docs/models.md), OpenJPEG at the same file sizes.
model-card: install
	$(BIN)/python tools/model_card.py --dataset $(KODAK) --card docs/models.md

# caec serve under load (docs/web.md): concurrent requests against its own server on 127.0.0.1; each
# completes or gets 503, temporary files and memory come back afterwards.
WEB_LOAD_ARGS ?= --requests 50 --rounds 2 --workers 2 --queue 8
web-load: install
	$(BIN)/python tools/web_load.py $(WEB_LOAD_ARGS) --json docs/web_load.json

# The web front end on http://127.0.0.1:8000/ with the Kodak photos and MNIST digits offered.
MNIST ?= ../shared/data/mnist
serve: install
	$(BIN)/caec serve --dataset $(KODAK) --mnist $(MNIST)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
