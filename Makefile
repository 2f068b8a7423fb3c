# luamig - build, test, demo, bench, install, asan.
#
# `make` builds build/luamig, build/luamig.so and build/libluamig.a.
# `make demo` and `make test` first install what a fresh Debian 12 machine
# lacks (as root, with apt-get).

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= gcc
PKGS      = lua5.4 libpq sqlite3
LUA      ?= lua5.4

WARN      = -Wall -Wextra -Werror -Wshadow -Wundef -Wwrite-strings \
            -Wmissing-prototypes -Wstrict-prototypes
OPT      ?= -O2 -g
SAN      ?=
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libpq is loaded with dlopen when a PostgreSQL URL is used (pq_shim.c):
# its headers are needed, its library is not linked.
PKG_LIBS   := $(filter-out -lpq,$(shell pkg-config --libs $(PKGS) 2>/dev/null)) -ldl
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(SAN) -pthread -fPIC -MMD -MP -Isrc -Idialects \
             -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm -pthread $(LDLIBS)

# The core library: every file in src/ and dialects/ except the two entry
# points and the build-time embedder.
ENTRY     = src/main.c src/module.c src/embedgen.c
LIB_SRC   = $(filter-out $(ENTRY),$(wildcard src/*.c)) $(wildcard dialects/*.c)
LIB_OBJ   = $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/embedded.o
LUA_FILES = $(sort $(wildcard lua/*.lua))

.PHONY: all deps demo test asan bench fuzz fuzzers install clean

all: $(BUILD)/luamig $(BUILD)/luamig.so $(BUILD)/libluamig.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# lua/*.lua are compiled into the binary so it runs from anywhere.
$(BUILD)/embedgen: src/embedgen.c
	@mkdir -p $(BUILD)
	$(CC) -std=c11 $(OPT) $(WARN) $< -o $@

$(BUILD)/embedded.c: $(BUILD)/embedgen $(LUA_FILES)
	$(BUILD)/embedgen $(LUA_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/embedded.o: $(BUILD)/embedded.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libluamig.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/luamig: $(BUILD)/obj/src/main.o $(BUILD)/libluamig.a
	$(CC) $(SAN) $^ -o $@ $(LDLIBS_ALL)

# A Lua module links the core but not liblua: the host provides Lua.
$(BUILD)/luamig.so: $(BUILD)/obj/src/module.o $(BUILD)/libluamig.a
	$(CC) $(SAN) -shared $^ -o $@ $(filter-out -llua5.4,$(LDLIBS_ALL))

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*.d)

# What a fresh Debian 12 machine lacks; installed only when missing.
DEB_PKGS = lua5.4 liblua5.4-dev libpq-dev libsqlite3-dev sqlite3 postgresql \
           lua-busted pkg-config gcc make alembic python3-sqlalchemy python3-psycopg2 \
           clang libclang-rt-14-dev
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing" >&2; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root to install:$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi

demo: deps
	$(MAKE) all
	rm -f demo.db
	$(BUILD)/luamig --url sqlite:///demo.db upgrade head
	$(BUILD)/luamig --url sqlite:///demo.db current
	$(BUILD)/luamig --url sqlite:///demo.db history

test: deps
	$(MAKE) all fuzzers
	LUA=$(LUA) BUILD=$(BUILD) sh spec/run.sh

# The specs under AddressSanitizer and UndefinedBehaviorSanitizer.  The
# module is loaded into an uninstrumented interpreter, so the runtime is
# preloaded and leak checking is left to the binary's own runs.
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan: deps
	$(MAKE) all fuzzers
	$(MAKE) all BUILD=build/asan OPT="-O1 -g" SAN="$(ASAN_FLAGS)"
	LUA=$(LUA) BUILD=build/asan LUAMIG_ASAN=1 sh spec/run.sh

bench: deps
	$(MAKE) all
	sh bench/run.sh

# libFuzzer targets (clang): the URL parser, identifier quoting and the
# target parser.  A short run of each is a spec (spec/fuzz_spec.lua);
# `make fuzz` runs each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 300
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -Isrc -Idialects -Ibuild $(PKG_CFLAGS)
FUZZERS       = $(patsubst spec/fuzz/%.c,build/fuzz/%,$(wildcard spec/fuzz/fuzz_*.c))
FUZZ_OBJ      = $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC)) build/fuzz/obj/embedded.o

fuzzers: $(FUZZERS)

# Keep the instrumented objects between runs (make would delete them as
# intermediates of the pattern chain).
.SECONDARY: $(FUZZ_OBJ)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/obj/embedded.o: build/embedded.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/%: spec/fuzz/%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) $^ -o $@ $(LDLIBS_ALL)

fuzz: deps
	$(MAKE) fuzzers
	for f in $(FUZZERS); do \
	  name=$${f##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$name; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    $(BUILD)/fuzz/corpus-$$name spec/fuzz/corpus/$$name || exit 1; \
	done

# The Lua module is luamig.so (luaopen_luamig, and luaopen_luamig_core for
# require "luamig.core") plus a luamig.lua in the Lua directory that the
# default package.path searches before ./?.lua: require "luamig" finds it
# even in a project whose configuration is ./luamig.lua.
LUA_SHARE = $(PREFIX)/share/lua/5.4
LUA_LIB   = $(PREFIX)/lib/lua/5.4
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LUA_LIB) $(DESTDIR)$(LUA_SHARE)
	install -m 755 $(BUILD)/luamig $(DESTDIR)$(PREFIX)/bin/luamig
	install -m 644 $(BUILD)/libluamig.a $(DESTDIR)$(PREFIX)/lib/libluamig.a
	install -m 644 src/luamig.h $(DESTDIR)$(PREFIX)/include/luamig.h
	install -m 755 $(BUILD)/luamig.so $(DESTDIR)$(LUA_LIB)/luamig.so
	install -m 644 src/module_shim.lua $(DESTDIR)$(LUA_SHARE)/luamig.lua

clean:
	rm -rf $(BUILD) demo.db demo.db.luamig-lock
