# Benchmarks (a table and bench/results/latest.json) and long-running reliability variants; the normal suite runs the short ones (scripts/test).
#
#   make soak                 1,000 jobs under upstream faults, 400 jobs through 40 kills on each
#                             backend, 30 s database and object-store outages, schemathesis with
#                             200 examples per operation
#   make reliability          the suite variants of tests/reliability only

PYTEST := .venv/bin/pytest
export PYTHONPATH := $(CURDIR)/tests$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: soak reliability bench

soak:
	VIDGATE_SOAK=1 VIDGATE_SCHEMATHESIS_EXAMPLES=200 $(PYTEST) tests/reliability -s -q -p no:cacheprovider

reliability:
	$(PYTEST) tests/reliability -s -q -p no:cacheprovider

bench:  # every benchmark; BENCH_ARGS="--only latency,cpu" for a subset
	.venv/bin/python -m bench $(BENCH_ARGS)
