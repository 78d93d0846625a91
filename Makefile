# Two commands for a newcomer: `make demo` and `make test`. Each does the whole set-up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup demo test test-fast bench clean

$(BIN)/lienzo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch and torchvision are pinned in pyproject.toml; pip takes them from this machine's disk.
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/lienzo data

# Debian's dataset-fashion-mnist: installed when missing and we are root, else say how.
.PHONY: data
data:
	@if [ ! -f $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's dataset-fashion-mnist"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  else \
	    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'," \
	         "or put the four IDX .gz files in a folder and set data.root"; exit 2; \
	  fi; \
	fi

# Chromium renders the report page in one test; installed when missing and we are root.
.PHONY: browser
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium (report rendering test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

demo: setup
	$(BIN)/lienzo train configs/fashion_fast.yaml

test: setup browser
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# The side-by-side speed measurements of benchmarks/RESULTS.md (Keras peer only where /tmp/tf has tensorflow-cpu).
bench: setup
	$(BIN)/python benchmarks/basenet_vs_peers.py --rounds 3
	bash benchmarks/resnet18_vs_peer.sh

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
