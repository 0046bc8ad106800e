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
	@if $(BIN)/python -m pip download --quiet --no-deps --no-index -d $(VENV)/torch-probe "torch==$(TORCH_VERSION)" >/dev/null 2>&1; then \
	  echo "installing the torch $(TORCH_VERSION) wheel found on this machine"; \
	  $(BIN)/python -m pip install "torch==$(TORCH_VERSION)"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "NVIDIA driver found: installing torch with CUDA from PyPI"; \
	  $(BIN)/python -m pip install "torch>=2.2"; \
	else \
	  echo "no NVIDIA driver found: installing the CPU-only build of torch"; \
	  $(BIN)/python -m pip install "torch>=2.2" --index-url $(TORCH_CPU_INDEX); \
	fi
	rm -rf $(VENV)/torch-probe
	$(BIN)/python -m pip install -e ".[test]"
	touch $@

install: $(BIN)/kgzarr

demo: install
	$(BIN)/kgzarr demo --out kgzarr-demo

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) kgzarr-demo .pytest_cache
