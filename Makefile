# sprout — see README.md. Every target works as root on a fresh Debian 12.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/sprout-initrd/sprout/pkg/cli.Version=$(VERSION)
export CGO_ENABLED = 0
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: all build test test-unit test-image test-loop test-crash test-bad test-fuzz test-qemu test-nixos bench demo soak clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sprout ./cmd/sprout

# The test tiers, cheapest first. Nothing may be skipped silently: the
# REQUIRE variables turn "tool/root missing" from a skip into a failure.
export SPROUT_REQUIRE_TOOLS = 1
export SPROUT_REQUIRE_ROOT = 1
export SPROUT_REQUIRE_ORACLE = 1

test: build test-unit test-image test-loop test-bad test-crash test-fuzz test-qemu test-nixos
	@echo "== all test tiers passed =="

test-unit: build
	@echo "== tier 1: unit tests (pure Go + package-level device tests) =="
	file bin/sprout | grep -q 'statically linked'
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...

test-image: build
	@echo "== tier 2: image files, differential against systemd-repart 252 =="
	@mkdir -p build && rm -f build/differential-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_DIFF_SUMMARY=$(CURDIR)/build/differential-summary.txt \
		$(GO) test -count=1 -timeout 20m ./tests/differential/
	@cat build/differential-summary.txt

test-loop: build
	@echo "== tier 3: loop devices (BLKPG, mounted partitions, refusals, 512-4096 byte sectors) =="
	SPROUT_BIN=$(CURDIR)/bin/sprout $(GO) test -count=1 -v -timeout 10m ./tests/loop/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|loop-device)|_test.go' | grep -v '^=== RUN'

test-bad: build
	@echo "== tier 4: bad inputs (testdata/bad: exit codes, one-line messages, byte-identical disks, 252's exit codes) =="
	cd tests/bad && SPROUT_BIN=$(CURDIR)/bin/sprout $(GO) test -count=1 -timeout 15m

test-crash: build
	@echo "== tier 6: crash at every write (power cut, killed mkfs via ptrace; dm-log-writes replay in QEMU) =="
	@mkdir -p build && rm -f build/crash-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_CRASH_SUMMARY=$(CURDIR)/build/crash-summary.txt \
		$(GO) test -count=1 -timeout 30m ./tests/crash/
	@cat build/crash-summary.txt

# Each fuzz target for a bounded number of executions (about 20 s each on
# 2 cores). A count, not a duration: with -fuzztime=20s Go 1.26's fuzzing
# coordinator sometimes reports "context deadline exceeded" at the end
# without any failing input (golang/go#75804, fixed in Go 1.27).
# docs/fuzzing.md says how to run longer.
FUZZ_PARSE ?= 800000x
FUZZ_READ  ?= 400000x
FUZZ_PLAN  ?= 120000x
test-fuzz:
	@echo "== tier 7: fuzzing: parser $(FUZZ_PARSE), GPT reader $(FUZZ_READ), planner $(FUZZ_PLAN) executions =="
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSE) ./pkg/spec
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$'  -fuzztime $(FUZZ_READ) -fuzzminimizetime 200x ./pkg/gpt
	$(GO) test -run '^$$' -fuzz '^FuzzPlan$$'  -fuzztime $(FUZZ_PLAN) -fuzzminimizetime 200x ./pkg/plan

test-qemu: build
	@echo "== tier 8: QEMU boots (Debian kernel; dracut and initramfs-tools initrds; TCG) =="
	SPROUT_BIN=$(CURDIR)/bin/sprout tests/qemu/run.sh

test-nixos:
	@echo "== NixOS module: parses, and its unit is ordered like systemd-units/sprout.service =="
	initrd/nixos/check.sh

# Boots the seed appliance N times (fresh disk, first boot, no-op boot).
soak: build
	SPROUT_BIN=$(CURDIR)/bin/sprout tests/qemu/soak.sh $(or $(N),50)

# The README's main command: build sprout and a demo appliance, grow it by
# 10 GiB, boot it twice in QEMU (installs its Debian packages if missing).
demo:
	demo/run.sh

clean:
	rm -rf bin build

# Side by side with systemd-repart 252: one table of medians and ratios
# (docs/benchmarks.md). Root; installs its Debian packages when missing;
# 5-15 minutes. RECORD=1 also writes the table into docs/benchmarks.md.
bench:
	GO=$(GO) ./bench/run.sh
