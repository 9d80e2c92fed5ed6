# sealcam: two commands matter. `make demo` runs the product, `make test` runs every test.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MPVM    := sim/mpvm/node_modules/@micropython/micropython-webassembly-pyscript/micropython.wasm

.PHONY: demo test bench setup clean voices hw-test system i18n

setup: $(STAMP) $(MPVM) system

# Debian packages the tests use, installed with apt-get when missing and allowed (CI runs
# as root): PostgreSQL (tests/pgserver.py starts its own server), FFmpeg (viewing copies),
# Chromium (the desk's browser tests), a CJK font (PDFs, the desk's screenshots), xorriso
DEBS := postgresql:initdb ffmpeg:ffmpeg chromium:chromium fonts-wqy-microhei:wqy xorriso:xorriso
system:
	@missing=""; for d in $(DEBS); do pkg=$${d%%:*}; cmd=$${d##*:}; \
	  case $$cmd in \
	    initdb) command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing $$pkg";; \
	    wqy) ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || missing="$$missing $$pkg";; \
	    *) command -v $$cmd >/dev/null || missing="$$missing $$pkg";; \
	  esac; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make setup: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make setup: missing Debian packages:$$missing (the tests that need them skip)"; fi; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $(STAMP)

$(MPVM): sim/mpvm/package.json sim/mpvm/package-lock.json
	cd sim/mpvm && npm ci --no-audit --no-fund --loglevel=error
	touch $(MPVM)

demo: setup
	$(VPY) -m sim.demo

# the suite runs on TEST_JOBS processes (pytest-xdist), each test file on one of them (its
# module fixtures, e.g. the demo's run, made once); TEST_JOBS=0 runs it in this process
TEST_JOBS ?= 2
test: setup
	$(VPY) -m pytest -q $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) tests

bench: setup
	$(VPY) -m tests.bench

# the hardware tests (hw_tests/README.md): a real board with PORT=/dev/ttyACM0 (and
# HWFLAGS="--archive ARCHIVE" for the dock test), the virtual board without PORT
# (`make test` runs them on the virtual board too: tests/test_sim_board.py)
hw-test: setup
	$(VPY) -m pytest -q -p no:cacheprovider hw_tests $(if $(PORT),--port $(PORT)) $(HWFLAGS)

# the virtual microphone's speech (sim/hal/voicepcm.py), remade with espeak-ng (apt); tests
# use the committed file and never need espeak-ng
voices: setup
	$(VPY) sim/make_voice_assets.py

# the zh_CN message catalog (host_tools/locale): extract, update, compile; exit 1 and a
# file:line list when a message is not translated yet
i18n: setup
	$(VPY) host_tools/locale/refresh.py

clean:
	rm -rf $(VENV) sim/mpvm/node_modules demo-out
