# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create a virtual environment in .venv and install kgzarr into it first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# PyTorch's own index of CPU-only wheels: on a machine without an NVIDIA GPU it
# avoids the multi-GB CUDA build that PyPI serves for Linux.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test clean

$(BIN)/kgzarr: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# A torch wheel already on this machine (pip's find-links) needs no download;
	@# otherwise take the CPU build unless an NVIDIA driver is present.
	$(BIN)/python -m pip install --no-index "torch==$(TORCH_VERSION)" 2>/dev/null \
	  || { if command -v nvidia-smi >/dev/null 2>&1; then \
	         $(BIN)/python -m pip install "torch>=2.2"; \
	       else \
	         $(BIN)/python -m pip install "torch>=2.2" --index-url $(TORCH_CPU_INDEX); \
	       fi; }
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

install: $(BIN)/kgzarr

demo: install
	$(BIN)/kgzarr demo --out kgzarr-demo

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) kgzarr-demo .pytest_cache
