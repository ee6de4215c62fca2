# tunnel — a Lua-scriptable tunnel runtime.
#
#   make run     install dependencies, build, run the quickstart
#   make test    install dependencies, build, run every suite (what .ci/run runs)
#   make all     the `tunnel` binary and the `tunnel.so` Lua module (in build/)
#   make check   ASan + UBSan build, unit and end-to-end tests under it
#   make fuzz    one libFuzzer harness per parser, FUZZ_TIME seconds each
#   make bench   tunnel beside direct loopback, haproxy and OpenSSH, as ratios
#   make lint    luacheck + a warning-free C build (-Wall -Wextra -Werror)
#   make install PREFIX=/usr/local
#   make deps    apt-get every Debian package the build, tests and benchmarks need

PREFIX   ?= /usr/local
BUILD    ?= build
SAN      ?=
CC       ?= cc
FUZZ_TIME ?= 30
VERSION  := 0.1.0

# ---------------------------------------------------------------------------
# Dependencies (Debian). `make deps` is safe to re-run: it only calls apt-get
# when something is missing.
DEB_BUILD := build-essential pkg-config clang libclang-rt-14-dev \
             luajit libluajit-5.1-dev libssl-dev libsodium-dev libev-dev \
             libcmocka-dev libwslay-dev libhttp-parser-dev
DEB_LUA   := lua-cjson lua-busted lua-check
DEB_TEST  := curl openssl postgresql postgresql-client openssh-server openssh-client \
             iproute2 procps psmisc python3 nftables prometheus
# Node.js (for the yamux interop test) from Debian only if none is on PATH:
# a machine with its own Node.js already has npm, and Debian's npm conflicts.
DEB_NODE  := $(if $(shell command -v node >/dev/null && command -v npm >/dev/null && echo yes),,nodejs npm)
DEB_BENCH := haproxy nginx-light iperf3 wrk
DEB_ALL   := $(DEB_BUILD) $(DEB_LUA) $(DEB_TEST) $(DEB_NODE) $(DEB_BENCH)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$(echo $$missing | sed 's/^/ /')"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "deps: all Debian packages present"; fi

# ---------------------------------------------------------------------------
# Flags

LUAJIT_CFLAGS := $(shell pkg-config --cflags luajit 2>/dev/null || echo -I/usr/include/luajit-2.1)
LUAJIT_LIBS   := $(shell pkg-config --libs luajit 2>/dev/null || echo -lluajit-5.1)

# -Wno-format-truncation: messages are cut on purpose where snprintf cuts them.
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wno-unused-parameter -Wno-format-truncation
CPPFLAGS := -D_GNU_SOURCE -DTNL_VERSION='"$(VERSION)"' -DTNL_PREFIX='"$(PREFIX)"' \
            -Icore $(LUAJIT_CFLAGS)
ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD    := -fsanitize=address,undefined
else
OPT      := -O2 -g
SANLD    :=
endif
# clang does not know -Wno-format-truncation; tell it not to mind.
WARN     += $(if $(findstring clang,$(CC)),-Wno-unknown-warning-option)
CFLAGS   ?=
CFLAGS   += -std=gnu11 -fPIC $(OPT) $(WARN)
LIBS     := -lev -lssl -lcrypto -lsodium -lwslay -lhttp_parser -lpthread -lm -ldl

CORE_SRC := $(sort $(shell find core -name '*.c' -not -path 'core/cli/*'))
CLI_SRC  := $(sort $(wildcard core/cli/*.c))
CORE_HDR := $(shell find core -name '*.h')
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all
all: $(BUILD)/tunnel $(BUILD)/tunnel.so

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/%.o: %.c $(CORE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libtunnel.a: $(CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

# The binary links LuaJIT and exports its symbols so Lua C modules (cjson) load.
$(BUILD)/tunnel: $(CLI_OBJ) $(BUILD)/libtunnel.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SANLD) -Wl,-E -o $@ $(CLI_OBJ) $(BUILD)/libtunnel.a $(LUAJIT_LIBS) $(LIBS)

# The module takes LuaJIT's symbols from the host process (luajit, a gateway).
$(BUILD)/tunnel.so: $(CORE_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SANLD) -shared -o $@ $(CORE_OBJ) $(LIBS)

# ---------------------------------------------------------------------------
# Tests. Every suite writes TAP to $(BUILD)/results/<suite>.tap; tests/tap-sum
# totals them into the one line CI reads.

RESULTS := $(BUILD)/results

$(BUILD)/gen/vectors.h: tests/unit/gen_vectors.lua $(wildcard tests/vectors/*.json)
	@mkdir -p $(@D)
	luajit tests/unit/gen_vectors.lua tests/vectors > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libtunnel.a $(BUILD)/gen/vectors.h tests/unit/unit.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) -I$(BUILD)/gen -Itests/unit $(CFLAGS) -Wno-missing-prototypes $(SANLD) -o $@ $< \
	  $(BUILD)/libtunnel.a $(LUAJIT_LIBS) -lcmocka $(LIBS)

.PHONY: unit spec e2e interop
unit: $(UNIT_BIN)
	@mkdir -p $(RESULTS)
	@tests/run-unit $(RESULTS)/unit$(SAN).tap $(UNIT_BIN)

spec: all
	@mkdir -p $(RESULTS)
	@tests/run-spec $(BUILD) $(RESULTS)/spec.tap

# Two scenarios at a time (those marked "# e2e: solo" run alone): most of
# their time is waiting. E2E_JOBS=1 runs them one by one.
E2E_JOBS ?= 2
e2e: all
	@mkdir -p $(RESULTS)
	@E2E_JOBS=$(E2E_JOBS) tests/run-e2e $(BUILD) $(RESULTS)/e2e$(SAN).tap

# The C side of the yamux interop test (tests/interop/yamux.sh drives it
# against @chainsafe/libp2p-yamux from npm).
$(BUILD)/tests/interop/yamux_peer: tests/interop/yamux_peer.c $(BUILD)/libtunnel.a $(CORE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(SANLD) -o $@ $< $(BUILD)/libtunnel.a $(LUAJIT_LIBS) $(LIBS)

interop: all $(BUILD)/tests/interop/yamux_peer
	@mkdir -p $(RESULTS)
	@tests/run-e2e $(BUILD) $(RESULTS)/interop.tap tests/interop

# -k: the end-to-end tests run even when a unit test failed. The results are
# copied whatever happened, so that the totals count the failures too.
.PHONY: check
check: deps
	@rm -rf build-san/results
	@status=0; $(MAKE) -k BUILD=build-san SAN=1 all unit e2e || status=1; \
	mkdir -p $(RESULTS) && cp build-san/results/*.tap $(RESULTS)/ 2>/dev/null; exit $$status

# ---------------------------------------------------------------------------
# Fuzzing: the core is rebuilt with clang and libFuzzer instrumentation.

FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJ := $(CORE_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c $(CORE_HDR)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CLANG   $<")
	$(Q)clang $(CPPFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libtunnel.a: $(FUZZ_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libtunnel.a
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(CPPFLAGS) -Itests/fuzz $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	  $(FUZZ_BUILD)/libtunnel.a $(LUAJIT_LIBS) $(LIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BIN)
fuzz: $(FUZZ_BIN)
	@mkdir -p $(RESULTS)
	@tests/run-fuzz $(FUZZ_TIME) $(RESULTS)/fuzz.tap $(FUZZ_BIN)

# ---------------------------------------------------------------------------
# Lint: Lua with luacheck, C with every warning an error (the normal build
# already uses -Werror; lint also compiles with clang for its extra checks).

.PHONY: lint
lint:
	luacheck -q lua policies examples spec bench tests
	$(MAKE) BUILD=build-lint CC=clang all

# ---------------------------------------------------------------------------
# The two commands from the README.

.PHONY: run test
run: deps all
	$(BUILD)/tunnel run examples/quickstart.lua

test: deps
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@status=0; step="tests/run-step $(RESULTS)"; \
	STEP_OK=1 $$step "lint: luacheck and a warning-free clang build" $(MAKE) --no-print-directory lint || status=1; \
	$$step "build" $(MAKE) --no-print-directory all || { tests/tap-sum $(RESULTS); exit 1; }; \
	for t in unit spec e2e interop; do $$step "make $$t" $(MAKE) --no-print-directory $$t || status=1; done; \
	$$step "make check (ASan+UBSan)" $(MAKE) --no-print-directory check || status=1; \
	$$step "make fuzz" $(MAKE) --no-print-directory fuzz FUZZ_TIME=$${FUZZ_TIME_CI:-10} || status=1; \
	tests/tap-sum $(RESULTS); exit $$status

.PHONY: bench
bench: deps all
	bench/run $(BUILD)

# ---------------------------------------------------------------------------

.PHONY: install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lua/5.1 \
	  $(DESTDIR)$(PREFIX)/share/tunnel/lua/tunnel $(DESTDIR)$(PREFIX)/share/tunnel/policies \
	  $(DESTDIR)$(PREFIX)/share/lua/5.1/tunnel
	install -m 0755 $(BUILD)/tunnel $(DESTDIR)$(PREFIX)/bin/tunnel
	install -m 0644 $(BUILD)/tunnel.so $(DESTDIR)$(PREFIX)/lib/lua/5.1/tunnel.so
	install -m 0644 lua/tunnel/*.lua $(DESTDIR)$(PREFIX)/share/tunnel/lua/tunnel/
	install -m 0644 lua/tunnel/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.1/tunnel/
	install -m 0644 policies/*.lua $(DESTDIR)$(PREFIX)/share/tunnel/policies/

.PHONY: clean
clean:
	rm -rf build build-san build-fuzz build-lint
