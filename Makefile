# Benchmarks (a table and bench/results/latest.json), long-running reliability variants and deployment checks; the normal suite runs the short ones (scripts/test).
#
#   make soak                 1,000 jobs under upstream faults, 400 jobs through 40 kills on each
#                             backend, 30 s database and object-store outages, schemathesis with
#                             200 examples per operation
#   make reliability          the suite variants of tests/reliability only
#   make deploy-check         the container image and the compose stack, one real job through it
#   make restore-drill        backup (pg_dump + the bucket), destroy, restore, check the job and its bytes
#   make lock                 refresh requirements.lock from pyproject.toml (pip-tools)

PYTEST := .venv/bin/pytest
export PYTHONPATH := $(CURDIR)/tests$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: soak reliability bench deploy-check restore-drill lock

soak:
	VIDGATE_SOAK=1 VIDGATE_SCHEMATHESIS_EXAMPLES=200 $(PYTEST) tests/reliability -s -q -p no:cacheprovider

reliability:
	$(PYTEST) tests/reliability -s -q -p no:cacheprovider

bench:  # every benchmark; BENCH_ARGS="--only latency,cpu" for a subset
	.venv/bin/python -m bench $(BENCH_ARGS)

# Build the container image and run compose.yaml's whole stack with podman on loopback, with one real
# job through it (create -> completed -> content); needs podman and podman-compose. Not in the suite.
deploy-check:
	deploy/check/run.sh

# Back up PostgreSQL and the bucket, destroy both, restore, and check the job and its bytes came back
# (on loopback, with the test suite's PostgreSQL and SeaweedFS). Not in the suite.
restore-drill:
	.venv/bin/python deploy/check/restore_drill.py

# Refresh requirements.lock (the image's pinned, hash-checked server install) after pyproject.toml's
# dependencies or server extra change; pins still allowed are kept. LOCK_ARGS=--upgrade takes the
# newest releases, LOCK_ARGS="--upgrade-package av" one. Needs pip-tools.
LOCK_TOOL ?= pip-compile
lock:
	$(LOCK_TOOL) --quiet $(LOCK_ARGS) --extra server --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
