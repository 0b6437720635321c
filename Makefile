# One task runner for newcomers and CI: `make demo`, `make test`, `make check`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install sshd test demo demo-down lint typecheck check bench bench-quick clean

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
# DEMO_PORT and DEMO_ROOT choose another port or folder (a port in use, another user's folder).
DEMO_PORT ?= 48022
DEMO_ROOT ?= /tmp/edgesync-sandbox
ES := $(BIN)/edgesync -c $(DEMO_ROOT)/edgesync.yaml

demo: install sshd
	$(BIN)/python -m sandbox up --root $(DEMO_ROOT) --port $(DEMO_PORT) --example examples/academyos --write-config $(DEMO_ROOT)/edgesync.yaml
	@echo; echo '$$ edgesync ls'
	@$(ES) ls
	@echo; echo '$$ edgesync diff'
	@$(ES) diff
	@echo; echo '$$ edgesync push wpp-provision'
	@$(ES) push wpp-provision
	@echo; echo '# the UI calls the endpoint: a real HTTP request, answered by the pushed function'
	@echo '# (the sandbox has no internet: its call to the WhatsApp API fails, and it logs why)'
	@$(BIN)/python -m sandbox request --root $(DEMO_ROOT) -X POST -d '{"schoolId": "school-42"}' wpp-provision
	@echo; echo '$$ edgesync logs --grep provision'
	@$(ES) logs --grep provision
	@echo; echo '$$ edgesync push --yes   # everything else that differs'
	@$(ES) push --yes
	@echo; echo '$$ edgesync diff --exit-code'
	@$(ES) diff --exit-code
	@echo; echo '$$ edgesync history'
	@$(ES) history

demo-down: install
	$(BIN)/python -m sandbox down --root $(DEMO_ROOT)

lint: install
	$(BIN)/ruff check edgesync sandbox sandbox/bin/docker tests bench tools
	$(BIN)/ruff format --check edgesync sandbox sandbox/bin/docker tests bench tools
	$(BIN)/mypy
	$(BIN)/python tools/check_scripts.py
	$(BIN)/deno check --quiet --no-config sandbox/runtime/*.ts
	$(BIN)/deno lint --quiet --no-config sandbox/runtime
	$(BIN)/deno fmt --check --quiet --no-config --line-width=100 sandbox/runtime

check: lint test

# edgesync vs rsync vs scp+ssh through a latency proxy (bench/README.md); BENCH_ARGS="--reps 3" etc.
bench: install sshd
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: install sshd
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
