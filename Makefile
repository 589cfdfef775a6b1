# The everyday commands; CI (.ci/run) runs the same checks, then the tests.
#   make check          lockfile, ruff, mypy, import cycles, generated stubs fresh, buf lint, buf breaking
#   make test           the README's test command (the whole suite: slow, needs PostgreSQL)
#   make protos         regenerate the stubs after editing a .proto (commit the output)
#   make bench          the standalone benchmarks in README.md (slow); one: make bench BENCH=registry
#   make baseline       accept the current API as the buf breaking baseline (on purpose only)

UV ?= uv
BENCH ?= gateway online_features registry observability validation serving root_cause

.PHONY: check lint types contracts test protos bench baseline

check: lint types contracts

lint:
	env -u UV_FROZEN $(UV) lock --check
	$(UV) run ruff check

types:
	$(UV) run mypy
	$(UV) run python tools/import_cycles.py

contracts:
	$(UV) run python protos/build.py check
	$(UV) run python protos/build.py lint
	$(UV) run python protos/build.py breaking

test:
	$(UV) run pytest

protos:
	$(UV) run python protos/build.py generate
	$(UV) run python protos/build.py check

bench:
	set -e; for b in $(BENCH); do echo "== bench/$$b.py"; $(UV) run python bench/$$b.py; done

baseline:
	$(UV) run python protos/build.py baseline
