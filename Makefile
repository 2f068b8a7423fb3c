# luamig - build, test, demo, bench, install, asan.
#
# `make` builds build/luamig, build/luamig.so, build/libluamig.a and
# build/libluamig.so.
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
# Hidden by default: the shared objects export only what is marked
# LUAMIG_API (luamig.h's functions, the module's luaopen_*).
CFLAGS_ALL = -std=c11 $(OPT) $(WARN) $(SAN) -pthread -fPIC -fvisibility=hidden -MMD -MP -Isrc -Idialects \
             -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm -pthread $(LDLIBS)

# The core library: every file in src/ and dialects/ except the entry
# points (the binary's main.c, the module's module*.c) and the build-time
# embedder.
MODULE_SRC = $(wildcard src/module*.c)
MODULE_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(MODULE_SRC))
ENTRY     = src/main.c $(MODULE_SRC) src/embedgen.c
LIB_SRC   = $(filter-out $(ENTRY),$(wildcard src/*.c)) $(wildcard dialects/*.c)
LIB_OBJ   = $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/embedded.o
LUA_FILES = $(sort $(wildcard lua/*.lua))

.PHONY: all module deps demo test asan bench fuzz fuzzers install install-lua \
        uninstall clean

all: $(BUILD)/luamig $(BUILD)/luamig.so $(BUILD)/libluamig.a $(BUILD)/libluamig.so
module: $(BUILD)/luamig.so

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

# A Lua module links the core but not liblua: the host provides Lua.  Of
# the core it exports nothing (--exclude-libs): only its luaopen_*.
$(BUILD)/luamig.so: $(MODULE_OBJ) $(BUILD)/libluamig.a
	$(CC) $(SAN) -shared -Wl,--exclude-libs,ALL $^ -o $@ \
	  $(filter-out -llua5.4,$(LDLIBS_ALL))

# The C library for programs that embed luamig (luamig.h), with Lua in it.
$(BUILD)/libluamig.so: $(LIB_OBJ)
	$(CC) $(SAN) -shared -Wl,-soname,libluamig.so $^ -o $@ $(LDLIBS_ALL)

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*.d)

# What a fresh Debian 12 machine lacks; installed only when missing.
DEB_PKGS = lua5.4 liblua5.4-dev libpq-dev libsqlite3-dev sqlite3 postgresql \
           lua-busted pkg-config gcc make alembic python3-sqlalchemy \
           python3-psycopg2 clang libclang-rt-14-dev luarocks groff-base man-db
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

# Where `make install` puts things (DESTDIR is prepended to each).  The
# Lua directories are the ones lua5.4.pc names for this PREFIX.  The Lua
# module is luamig.so (luaopen_luamig, luaopen_luamig_core,
# luaopen_luamig_testing) plus a luamig.lua, in the Lua directory that
# the default package.path searches before ./?.lua, that loads it from
# LUA_CMOD: require "luamig" finds it even in a project whose
# configuration is ./luamig.lua, and needs no LUA_CPATH.
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
lua_dir     = $(shell pkg-config --define-variable=prefix=$(PREFIX) --variable=$(1) lua5.4 2>/dev/null)
LUA_CMOD   ?= $(or $(call lua_dir,INSTALL_CMOD),$(PREFIX)/lib/x86_64-linux-gnu/lua/5.4)
LUA_LMOD   ?= $(or $(call lua_dir,INSTALL_LMOD),$(PREFIX)/share/lua/5.4)

# Every file install writes, for uninstall.
INSTALLED = $(BINDIR)/luamig $(LIBDIR)/libluamig.a $(LIBDIR)/libluamig.so \
            $(LIBDIR)/pkgconfig/luamig.pc $(INCLUDEDIR)/luamig.h \
            $(MANDIR)/man1/luamig.1 $(BASHCOMPDIR)/luamig
INSTALLED_LUA = $(LUA_CMOD)/luamig.so $(LUA_LMOD)/luamig.lua \
                $(LUA_LMOD)/luamig/testing.lua

install: all install-lua
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(BUILD)/luamig $(DESTDIR)$(BINDIR)/luamig
	install -m 644 $(BUILD)/libluamig.a $(DESTDIR)$(LIBDIR)/libluamig.a
	install -m 755 $(BUILD)/libluamig.so $(DESTDIR)$(LIBDIR)/libluamig.so
	install -m 644 src/luamig.h $(DESTDIR)$(INCLUDEDIR)/luamig.h
	install -m 644 doc/luamig.1 $(DESTDIR)$(MANDIR)/man1/luamig.1
	install -m 644 completion/luamig.bash $(DESTDIR)$(BASHCOMPDIR)/luamig
	printf '%s\n' 'prefix=$(PREFIX)' \
	  'libdir=$(patsubst $(PREFIX)%,$${prefix}%,$(LIBDIR))' \
	  'includedir=$(patsubst $(PREFIX)%,$${prefix}%,$(INCLUDEDIR))' \
	  '' 'Name: luamig' \
	  'Description: database schema migrations in Lua (PostgreSQL, SQLite)' \
	  'Version: $(shell sed -n 's/^#define LUAMIG_VERSION "\(.*\)"/\1/p' src/luamig.h)' \
	  'Libs: -L$${libdir} -lluamig' \
	  'Libs.private: $(filter -l% -pthread,$(LDLIBS_ALL))' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(LIBDIR)/pkgconfig/luamig.pc

# The Lua module alone (what the rockspec installs).
install-lua: $(BUILD)/luamig.so
	install -d $(DESTDIR)$(LUA_CMOD) $(DESTDIR)$(LUA_LMOD)/luamig
	install -m 755 $(BUILD)/luamig.so $(DESTDIR)$(LUA_CMOD)/luamig.so
	sed 's|@LUA_CMOD@|$(LUA_CMOD)|' src/module_shim.lua \
	  > $(DESTDIR)$(LUA_LMOD)/luamig.lua
	install -m 644 src/testing_shim.lua $(DESTDIR)$(LUA_LMOD)/luamig/testing.lua

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED) $(INSTALLED_LUA))
	-rmdir $(DESTDIR)$(LUA_LMOD)/luamig 2>/dev/null

clean:
	rm -rf $(BUILD) demo.db demo.db.luamig-lock
