# DevOpsLab — one non-recursive Makefile.
#
#   make              build provisioner/devopslab
#   make check        install deps, build, run every test (plain and ASan+UBSan)
#   make test-unit | test-integration | test-cluster | test-e2e   one kind of test
#   make demo         install deps, build, show the plan for the example bundle
#   make fuzz         run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench        benchmarks (speed and memory targets live here, not in tests)
#   make lint         cppcheck + the style checks
#
# BUILD=dir puts objects elsewhere; SAN=1 builds with ASan+UBSan (used by check).
# SIM_RECORD_DIR=dir (check, test-*): every simulator also appends each request
# it receives to dir/TEST/SIMULATOR-NODE.jsonl (tests/README.md).

BUILD ?= build
SAN ?= 0
CC ?= cc

PKG_LIBS := yaml-0.1 json-c libarchive libcurl libcrypto blkid fdisk
# lib/guests/isoimage.c writes the guests' seed and assets ISOs.
PKG_LIBS += libisofs-1
# http.c verifies certificate fingerprints in an OpenSSL verify callback.
PKG_LIBS += libssl
# lib/edge/edge.c hashes the Traefik dashboard's password (bcrypt, libxcrypt).
PKG_LIBS += libxcrypt
# lib/live/live.c serves a run's live status over HTTP (libmicrohttpd).
PKG_LIBS += libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKG_LIBS))
PKG_LDLIBS := $(shell pkg-config --libs $(PKG_LIBS))
# Debian 12's mbedtls 2.28 ships no .pc file; Debian 13's 3.x does.
# mbedtls is linked statically: its soname changes between Debian releases
# (12: libmbedtls.so.14, 13: .so.21) and the binary the boot image runs is
# the one laid down on the installed Proxmox VE 9 (Debian 13) system
# (docs/install.md). Every other library keeps its soname across both.
MBEDTLS_LDLIBS := $(shell pkg-config --silence-errors --static --libs mbedtls mbedx509 mbedcrypto || echo -lmbedtls -lmbedx509 -lmbedcrypto)
MBEDTLS_LDLIBS := -Wl,-Bstatic $(MBEDTLS_LDLIBS) -Wl,-Bdynamic

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wundef -Wwrite-strings \
	-Wstrict-prototypes -Wmissing-prototypes -fno-common
INCLUDES := -Iprovisioner/basic -Iprovisioner/lib -Iprovisioner/verbs
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -pthread -fstack-protector-strong $(INCLUDES) $(PKG_CFLAGS) -MMD -MP
ifeq ($(SAN),1)
ALL_CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_LDFLAGS := -fsanitize=address,undefined
else
ALL_CFLAGS += -D_FORTIFY_SOURCE=3
endif
LDLIBS := -Wl,--as-needed $(PKG_LDLIBS) $(MBEDTLS_LDLIBS)
LDLIBS += -lcrypt -lresolv
# The step engine runs concurrent steps on threads (lib/plan/engine.c).
LDLIBS += -pthread

ifeq ($(BUILD),build)
BIN := provisioner/devopslab
else
BIN := $(BUILD)/devopslab
endif

LIB_SRC := $(sort $(wildcard provisioner/basic/*.c provisioner/lib/*.c provisioner/lib/*/*.c))
VERB_SRC := $(sort $(wildcard provisioner/verbs/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz-*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
VERB_OBJ := $(VERB_SRC:%.c=$(BUILD)/%.o)
LIBA := $(BUILD)/libdevopslab.a
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps tests check test-unit test-integration test-e2e test-cluster test-guests test-k3s test-dns-edge test-operations test-gitops fuzz fuzz-build \
	bench demo lint clean image rootfs guest-image

all: $(BIN)

deps:
	@sh scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(VERB_OBJ) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(SAN_LDFLAGS) -o $@ $(VERB_OBJ) $(LIBA) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MF $(BUILD)/tests/.$*.d -Itests/unit $(SAN_LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS) $(shell pkg-config --libs cmocka)

tests: $(BIN) $(UNIT_BIN)

# --- fuzzing (clang + libFuzzer) --------------------------------------------
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARN) $(INCLUDES) $(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

FUZZ_SECONDS ?= 60
fuzz: deps fuzz-build
	tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) $(FUZZ_BIN)

# --- tests --------------------------------------------------------------------
check: deps
	tests/check.sh

test-unit: tests
	tests/run.sh --unit $(UNIT_BIN)

test-integration: $(BIN)
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-*.sh

# Proxmox cluster formation against the simulator (tests/sim/pve_sim.py).
test-cluster: $(BIN)
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-cluster-*.sh

# The guest layer: steps against the simulator, the simulator's own guest
# model, the seeds and ISOs (docs/guests.md).
test-guests: $(BIN) tests
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-guests.sh tests/integration/t-guests-kill.sh tests/integration/t-guests-faults.sh \
		tests/integration/t-sim-guests.sh tests/integration/t-cloudinit-schema.sh \
		tests/integration/t-isoimage.sh tests/integration/t-guest-payload.sh tests/integration/t-guest-boot.sh

# K3s: the steps against the Proxmox and Kubernetes API simulators, kill -9
# and resume, the trust and configuration (docs/k3s.md).
test-k3s: $(BIN) tests
	tests/run.sh --unit $(BUILD)/tests/test-k3s
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-k3s.sh tests/integration/t-k3s-kill.sh \
		tests/integration/t-k3s-faults.sh tests/integration/t-k3s-charts.sh tests/integration/t-k3s-traefik.sh

# DNS and the edge (issue 13, in progress): the DNS steps against the Proxmox
# and Technitium simulators (docs/dns.md), the Technitium simulator itself,
# its API and the zones its knotd serves on loopback (tests/sim/technitium_sim.py).
test-dns-edge: $(BIN) tests
	tests/run.sh --unit $(BUILD)/tests/test-dns $(BUILD)/tests/test-edge $(BUILD)/tests/test-acme
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-sim-technitium.sh \
		tests/integration/t-sim-technitium-install.sh tests/integration/t-dns.sh \
		tests/integration/t-sim-edge-https.sh tests/integration/t-sim-acme.sh tests/integration/t-edge.sh

# Operations (issue 14, in progress): the report and the live status page
# (docs/operations.md), power cuts at every first-boot checkpoint, the
# backup job against the simulator, a reinstalled node rejoining.
test-operations: $(BIN) tests
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-report.sh tests/integration/t-live.sh \
		tests/integration/t-powercut.sh tests/integration/t-dr-node.sh tests/integration/t-plan.sh tests/integration/t-backup-pbs.sh \
		tests/integration/t-sim-guests.sh tests/integration/t-guests.sh tests/integration/t-cluster-dr.sh

# GitOps, registry, metrics and logs (issue 15): Argo CD from the bundle, its
# repository and root Application (docs/gitops.md), the lab's registry
# (docs/registry.md), the metrics stack and the logs (docs/monitoring.md),
# against the simulators (the Kubernetes one models Argo CD's application
# controller, the registry's Deployment and Distribution API, Prometheus's
# targets, Grafana and Loki; the Proxmox one the nodes' K3s restarts and
# image pushes).
test-gitops: $(BIN) tests
	tests/run.sh --unit $(BUILD)/tests/test-gitops $(BUILD)/tests/test-monitoring $(BUILD)/tests/test-registry \
		$(BUILD)/tests/test-plan $(BUILD)/tests/test-manifest $(BUILD)/tests/test-sysconf
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-sim-argocd.sh \
		tests/integration/t-gitops.sh tests/integration/t-sim-registry.sh tests/integration/t-sim-registry-seed.sh \
		tests/integration/t-registry.sh tests/integration/t-sim-monitoring.sh tests/integration/t-monitoring.sh \
		tests/integration/t-sim-logs.sh tests/integration/t-logs.sh tests/integration/t-validate.sh

# --- the boot image and its QEMU end-to-end tests (docs/image.md) -------------
# make image PUBKEY=pub.pem [BUNDLE=b.tar.zst] [BUNDLE_URL=http://...]
image: deps all
	image/build.sh --pubkey "$(PUBKEY)" $(if $(BUNDLE),--bundle "$(BUNDLE)") \
		$(if $(BUNDLE_URL),--bundle-url "$(BUNDLE_URL)")

test-e2e: deps all
	DEVOPSLAB=$(CURDIR)/$(BIN) tests/run.sh --integration tests/integration/t-e2e-*.sh

# The Debian-only root file system for tests and the demo (docs/install.md);
# image/rootfs.sh --variant pve is the Proxmox VE recipe.
rootfs: deps
	image/rootfs.sh --variant debian --out out/rootfs

# The Debian 13 cloud guest that t-guest-boot boots with our seeds
# (image/guest.sh, docs/guests.md).
guest-image: deps
	image/guest.sh --out out/guest

bench: deps all
	scripts/bench.sh

demo: deps all
	scripts/demo.sh

lint: all
	scripts/check-layout.py --objects $(BUILD)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 --inline-suppr \
		$(INCLUDES) --suppress=missingIncludeSystem provisioner

clean:
	rm -rf build build-asan build-fuzz out provisioner/devopslab

-include $(LIB_OBJ:.o=.d) $(VERB_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(wildcard $(BUILD)/tests/.*.d)

# --- test harnesses: tests/harness/NAME.c -> $(BUILD)/tests/harness/NAME -------
# Small drivers that integration tests run (never installed).
HARNESS_SRC := $(sort $(wildcard tests/harness/*.c))
HARNESS_BIN := $(HARNESS_SRC:tests/harness/%.c=$(BUILD)/tests/harness/%)

$(BUILD)/tests/harness/%: tests/harness/%.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MF $(BUILD)/tests/harness/.$*.d $(SAN_LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

tests: $(HARNESS_BIN)
test-integration: $(HARNESS_BIN)

-include $(wildcard $(BUILD)/tests/harness/.*.d)
