# sprout — see README.md. Every target works as root on a fresh Debian 12.
export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/sprout-initrd/sprout/pkg/cli.Version=$(VERSION)
export CGO_ENABLED = 0
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

.PHONY: all build man nix-facts deps install uninstall deb bench demo soak clean

all: build man

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/sprout ./cmd/sprout

# The Debian packages a command needs (scripts/packages). make test and
# make demo run it first; so does .ci/run, through make test.
deps:
	scripts/deps.sh test

# Man pages: written once in Markdown (docs/man), rendered here with
# go-md2man, a Go tool dependency in go.mod (no Debian package needed).
MANPAGES := bin/man/sprout.8 bin/man/sprout.service.8
man: $(MANPAGES)
bin/man/%.8: docs/man/%.8.md go.mod
	@mkdir -p bin/man
	$(GO) tool go-md2man -in $< -out $@

# The declarations the NixOS module reads (initrd/nixos/needs.json), made
# from pkg/fstype and pkg/encryption; pkg/initrdneeds's test fails when the
# committed file is stale.
nix-facts: build
	bin/sprout --initrd-needs=all --json=pretty >initrd/nixos/needs.json

# --- Installing --------------------------------------------------------------
# make install [DESTDIR=/staging] [PREFIX=/usr]. The binary, man pages and
# docs go under PREFIX. The dracut module and the initramfs-tools files go
# where dracut and initramfs-tools look for them, whatever PREFIX is
# (neither reads /usr/local): pkg-config's answer where dracut.pc exists,
# else the path Debian, Fedora and Arch share. The unit is an initrd unit:
# it goes into the dracut module, as dracut's own modules ship theirs, and
# never into the host's unit directories (sprout.service(8)). The dracut
# module and the initramfs-tools hook are told where the binary went.
PREFIX      ?= /usr
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/sprout
SYSCONFDIR  ?= /etc
pkgvar = $(or $(shell pkg-config --variable=$(2) $(1) 2>/dev/null),$(3))
# UNITDIR: only for uninstall (older versions installed a host unit).
UNITDIR     ?= $(call pkgvar,systemd,systemdsystemunitdir,/usr/lib/systemd/system)
DRACUTDIR   ?= $(call pkgvar,dracut,dracutmodulesdir,/usr/lib/dracut/modules.d)
INITRAMFSDIR ?= /usr/share/initramfs-tools
DOCS := README.md LICENSE docs/algorithm.md docs/boot.md docs/compatibility.md docs/gpt.md docs/safety.md

install: build man
	install -Dm0755 bin/sprout $(DESTDIR)$(BINDIR)/sprout
	install -Dm0755 initrd/dracut/90sprout/module-setup.sh $(DESTDIR)$(DRACUTDIR)/90sprout/module-setup.sh
	install -Dm0755 initrd/dracut/90sprout/sprout-pre-mount.sh $(DESTDIR)$(DRACUTDIR)/90sprout/sprout-pre-mount.sh
	install -Dm0644 systemd-units/sprout.service $(DESTDIR)$(DRACUTDIR)/90sprout/sprout.service
	sed -i 's|^sprout_installed_binary=.*|sprout_installed_binary=$(BINDIR)/sprout|' $(DESTDIR)$(DRACUTDIR)/90sprout/module-setup.sh
	install -Dm0755 initrd/initramfs-tools/hooks/sprout $(DESTDIR)$(INITRAMFSDIR)/hooks/sprout
	sed -i 's|^installed_binary=.*|installed_binary=$(BINDIR)/sprout|; s|^installed_unit=.*|installed_unit=$(DRACUTDIR)/90sprout/sprout.service|' $(DESTDIR)$(INITRAMFSDIR)/hooks/sprout
	install -Dm0755 initrd/initramfs-tools/scripts/local-premount/sprout $(DESTDIR)$(INITRAMFSDIR)/scripts/local-premount/sprout
	install -Dm0644 initrd/initramfs-tools/conf.d/sprout $(DESTDIR)$(SYSCONFDIR)/initramfs-tools/conf.d/sprout
	install -Dm0644 -t $(DESTDIR)$(MANDIR)/man8 $(MANPAGES)
	install -Dm0644 -t $(DESTDIR)$(DOCDIR) $(DOCS)

# Removes what install put there (the same variables must be given), and
# the host unit an older make install put into UNITDIR.
# /etc/initramfs-tools/conf.d/sprout stays if it was edited.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sprout $(DESTDIR)$(UNITDIR)/sprout.service
	rm -rf $(DESTDIR)$(DRACUTDIR)/90sprout
	rm -f $(DESTDIR)$(INITRAMFSDIR)/hooks/sprout $(DESTDIR)$(INITRAMFSDIR)/scripts/local-premount/sprout
	if cmp -s initrd/initramfs-tools/conf.d/sprout $(DESTDIR)$(SYSCONFDIR)/initramfs-tools/conf.d/sprout; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/initramfs-tools/conf.d/sprout; fi
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MANPAGES)))
	rm -rf $(DESTDIR)$(DOCDIR)

# A Debian package from a staged make install, with dpkg-deb (part of
# dpkg, so nothing outside Debian is needed). The version must start with
# a digit: 0~git<commit date>.<commit> until the project has tags.
DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || \
	echo 0~git$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo 0))
deb: build man
	scripts/make-deb.sh --version '$(DEB_VERSION)' --out build

# The test tiers, cheapest first; each target is named after the folder it
# runs (tests/README.md is the map: tier, target, folder, what it proves,
# against which oracle). Nothing may be skipped silently: the REQUIRE
# variables turn "tool/root/oracle missing" from a skip into a failure.
export SPROUT_REQUIRE_TOOLS = 1
export SPROUT_REQUIRE_ROOT = 1
export SPROUT_REQUIRE_ORACLE = 1

TIERS := test-unit test-differential test-encrypt test-features test-loop test-bad test-crash test-fuzz test-qemu test-nixos test-qemu-installed
.PHONY: test $(TIERS)
test: deps build $(TIERS)
	@echo "== all test tiers passed: $(TIERS) =="

# pkg/... and cmd/... (their own testdata beside them), and tests/harness,
# the helpers every tier uses.
test-unit: deps build
	@echo "== test-unit (pkg/..., cmd/..., tests/harness): unit tests, pure Go and package-level device tests =="
	file bin/sprout | grep -q 'statically linked'
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...
	$(GO) test -count=1 ./tests/harness

# The three tiers against systemd-repart print one summary line per oracle
# into build/<tier>-summary.txt and show it at the end.
test-differential: deps build
	@echo "== test-differential (tests/differential): image files against systemd-repart 252, 254, 257 and Debian testing's (chroots) =="
	@mkdir -p build && rm -f build/differential-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_DIFF_SUMMARY=$(CURDIR)/build/differential-summary.txt \
		$(GO) test -count=1 -timeout 20m ./tests/differential/
	@cat build/differential-summary.txt

test-encrypt: deps build
	@echo "== test-encrypt (tests/encrypt): Encrypt= in a QEMU guest with a software TPM2, against systemd-repart 252, 254 and 257 =="
	@mkdir -p build && rm -f build/encrypt-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_DIFF_SUMMARY=$(CURDIR)/build/encrypt-summary.txt \
		$(GO) test -count=1 -timeout 25m ./tests/encrypt/
	@cat build/encrypt-summary.txt

test-features: deps build
	@echo "== test-features (tests/features): the keys and flags of systemd 253-262 against systemd-repart 262 (Debian testing's chroot) =="
	@mkdir -p build && rm -f build/features-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_DIFF_SUMMARY=$(CURDIR)/build/features-summary.txt \
		$(GO) test -count=1 -timeout 10m ./tests/features/
	@cat build/features-summary.txt

test-loop: deps build
	@echo "== test-loop (tests/loop): loop devices (BLKPG, mounted partitions, refusals, 512-4096 byte sectors) =="
	SPROUT_BIN=$(CURDIR)/bin/sprout $(GO) test -count=1 -v -timeout 10m ./tests/loop/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|loop-device)|_test.go' | grep -v '^=== RUN'

test-bad: deps build
	@echo "== test-bad (tests/bad): bad inputs (tests/bad/testdata: exit codes, one-line messages, byte-identical disks; the exit codes of systemd-repart 252, 254, 257 and Debian testing's) =="
	cd tests/bad && SPROUT_BIN=$(CURDIR)/bin/sprout $(GO) test -count=1 -timeout 15m

test-crash: deps build
	@echo "== test-crash (tests/crash): crash at every write (power cut, killed mkfs via ptrace; dm-log-writes replay in QEMU) =="
	@mkdir -p build && rm -f build/crash-summary.txt
	SPROUT_BIN=$(CURDIR)/bin/sprout SPROUT_CRASH_SUMMARY=$(CURDIR)/build/crash-summary.txt \
		$(GO) test -count=1 -timeout 30m ./tests/crash/
	@cat build/crash-summary.txt

# Each fuzz target for a bounded number of executions (about 10 s each on
# 2 cores). A count, not a duration: with -fuzztime=20s Go 1.26's fuzzing
# coordinator sometimes reports "context deadline exceeded" at the end
# without any failing input (golang/go#75804, fixed in Go 1.27).
# docs/fuzzing.md says how to run longer.
FUZZ_PARSE ?= 400000x
FUZZ_READ  ?= 200000x
FUZZ_PLAN  ?= 60000x
test-fuzz: deps
	@echo "== test-fuzz (pkg/repartd, pkg/gpt, pkg/plan): fuzzing: parser $(FUZZ_PARSE), GPT reader $(FUZZ_READ), planner $(FUZZ_PLAN) executions =="
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_PARSE) ./pkg/repartd
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$'  -fuzztime $(FUZZ_READ) -fuzzminimizetime 200x ./pkg/gpt
	$(GO) test -run '^$$' -fuzz '^FuzzPlan$$'  -fuzztime $(FUZZ_PLAN) -fuzzminimizetime 200x ./pkg/plan

test-qemu: deps build
	@echo "== test-qemu (tests/qemu, TestQEMU): QEMU boots (Debian kernel; dracut and initramfs-tools initrds; TCG) =="
	SPROUT_BIN=$(CURDIR)/bin/sprout tests/qemu/run.sh

test-nixos: deps build
	@echo "== test-nixos (initrd/nixos, nix): every .nix parses; the NixOS module against stand-ins: its unit is systemd-units/sprout.service field by field, its initrd what sprout --initrd-needs says, its refusals, the --compat= pin; package, flake and VM test evaluate; vendorHash is current (nothing is built: no nixpkgs here) =="
	SPROUT_BIN=$(CURDIR)/bin/sprout initrd/nixos/check.sh
	nix/check.sh

# sprout as users install it: make install, and the .deb with apt-get, each
# in a throwaway overlay of this machine's /usr, /etc and /var; the
# refusals; initrds from the host's own dracut and mkinitramfs; each booted
# twice, the make install dracut one from an SD card, USB, SCSI and NVMe
# (tests/install/build-initrds.sh, tests/qemu/installed_test.go).
test-qemu-installed: deps build
	@echo "== test-qemu-installed (tests/qemu, TestInstalledPath; tests/install): installed path (lintian on the .deb; make install and the .deb; the host's dracut and mkinitramfs; refusals; 4 initrds booted twice, one of them from SD, USB, SCSI and NVMe) =="
	$(GO) test -count=1 -tags qemu -run '^TestInstalledPath$$' -v -timeout 40m ./tests/qemu/ 2>&1 | grep --line-buffered -v -E '^=== (RUN|PAUSE|CONT|NAME)'

# Boots the seed appliance N times (fresh disk, first boot, no-op boot).
soak: build
	SPROUT_BIN=$(CURDIR)/bin/sprout tests/qemu/soak.sh $(or $(N),50)

# The README's main command: build sprout and a demo appliance, grow it by
# 10 GiB, boot it twice in QEMU (installs its Debian packages if missing).
demo:
	scripts/deps.sh demo
	demo/run.sh

clean:
	rm -rf bin build

# Side by side with systemd-repart 252: one table of medians and ratios
# (docs/benchmarks.md). Root; installs its Debian packages when missing;
# 5-15 minutes. RECORD=1 also writes the table into docs/benchmarks.md.
bench:
	GO=$(GO) ./bench/run.sh
