# One task runner for newcomers and CI: `make demo`, `make test`, `make check`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install sshd test demo demo-down lint typecheck check bench faults clean

$(STAMP): pyproject.toml
	@echo "installing edgesync and its dev tools into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -e '.[dev]' > $(VENV)/install.log 2>&1 \
	  || { tail -n 30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# The sandbox server is a real OpenSSH sshd: install it when missing (as root), else say how.
sshd:
	@if [ ! -x /usr/sbin/sshd ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing openssh-server (needed by the sandbox server)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; \
	  else \
	    echo "error: /usr/sbin/sshd is missing: run 'sudo apt-get install openssh-server' first" >&2; exit 1; \
	  fi; \
	fi

test: install sshd
	$(BIN)/python -m pytest -q

# Start the sandbox server seeded like the incident notes, then run the main job against it.
demo: install sshd
	$(BIN)/python -m sandbox up --example examples/academyos
	@echo; echo '$$ edgesync ls'
	@$(BIN)/edgesync ls
	@echo; echo '$$ edgesync diff'
	@$(BIN)/edgesync diff
	@echo; echo '$$ edgesync push wpp-provision'
	@$(BIN)/edgesync push wpp-provision --logs-seconds 3
	@echo; echo '# the UI calls the endpoint (simulated request on the sandbox)'
	@$(BIN)/python -m sandbox request wpp-provision
	@echo; echo '$$ edgesync logs --grep provision'
	@$(BIN)/edgesync logs --grep provision
	@echo; echo '$$ edgesync push   # everything else that differs'
	@$(BIN)/edgesync push --logs-seconds 2
	@echo; echo '$$ edgesync diff --exit-code'
	@$(BIN)/edgesync diff --exit-code
	@echo; echo '$$ edgesync history'
	@$(BIN)/edgesync history

demo-down: install
	$(BIN)/python -m sandbox down

lint: install
	$(BIN)/ruff check edgesync sandbox tests bench tools
	$(BIN)/ruff format --check edgesync sandbox tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/check_scripts.py

check: lint test

bench: install sshd
	$(BIN)/python bench/diff_bench.py

# Fault injection against the sandbox: 200 kill points (client SIGKILL, connection cuts, SIGKILL
# of each server process), the concurrency matrix and disk full on a tmpfs (skipped with the
# reason where mounting is not permitted). FAULTS_ARGS adds options, e.g. --seed 3 or --jobs 1.
FAULTS_ARGS ?=
faults: install sshd
	$(BIN)/python -m faults --kill-points 200 --concurrency --disk-full --jobs 2 $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
