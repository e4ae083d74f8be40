# Pretraining at Scale: the two commands are `make book` and `make test`.
# Everything installs into .venv; every target is idempotent.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH_CPU_VERSION := 2.13.0
MUP_VERSION := 1.0.0
MUP_STAMP   := $(VENV)/.mup-$(MUP_VERSION)
JB     := $(VENV)/bin/jupyter-book
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book test test-unit gpu lab exercises grade feedback student clean help

help:
	@echo "make book       install everything, then build the executed static book into book/_build/html/"
	@echo "make test       install everything, build the book, run every test (unit, notebooks, book, exercises)"
	@echo "make lab        open the course in JupyterLab"
	@echo "make gpu        on a CUDA machine: run the GPU tests and record GPU benchmarks into labutils/data/gpu/"
	@echo "make exercises  release the student versions of the graded assignments into exercises/release/"
	@echo "make grade      autograde exercises/submitted/<student>/<assignment>/ into exercises/grades.csv"
	@echo "make feedback   write per-student HTML feedback into exercises/feedback/"
	@echo "make student    build the student edition (chapters, labutils, released assignments) into exercises/release/student-edition/"
	@echo "make clean      remove the environment and everything built"

install: $(STAMP) $(MUP_STAMP) $(JUPYTER_CONFIG_DIR)/jupyter_server_config.py

# CPU-only machines get the CPU build of PyTorch first (a plain `pip install torch` would pull a
# multi-GB CUDA build); machines with an NVIDIA driver get the default CUDA build via pyproject.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then \
	  $(PY) -m pip install --quiet "torch==$(TORCH_CPU_VERSION)"; fi
	$(PY) -m pip uninstall --quiet --yes mup  # put back by $(MUP_STAMP); see there
	$(PY) -m pip install --quiet -e ".[book,lab,test]"
	$(PY) -m pip check
	touch $@

# mup (microsoft/mup), the muP reference that tests/test_mup_reference.py checks labutils.mup
# against. Its setup.py declares torchvision, pandas and seaborn, but `import mup` needs only torch
# and pyyaml. A plain `pip install mup` brings the newest torchvision, which pins its own torch
# release (torchvision 0.29.1 pins torch==2.14.1), so pip replaces the CPU torch 2.13.0 above with
# PyPI's CUDA build and ~15 nvidia-* wheels. So mup goes in with --no-deps, after `pip check`: the
# check would list the three deps it skips, which is why the recipe above uninstalls mup before
# its own check and this one puts it back.
$(MUP_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --no-deps "mup==$(MUP_VERSION)"
	$(PY) -c "import mup"
	touch $@

# Jupyter refuses to run as root unless told; keep its config inside the repo.
$(JUPYTER_CONFIG_DIR)/jupyter_server_config.py:
	mkdir -p $(JUPYTER_CONFIG_DIR)
	echo "c.ServerApp.allow_root = True" > $@

book/vendor/require.js:
	bash book/vendor.sh

book: install book/vendor/require.js
	$(PY) exercises/tools/book_pages.py
	$(JB) build -W -n --keep-going book/
	@echo "Built book/_build/html/index.html"

# tests/test_book.py drives Debian's chromium through Playwright (executable_path), so no browser
# download is needed; install chromium where we can. Without it the browser tests skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	   DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) || \
	  echo "chromium could not be installed: the book's browser tests will be skipped"

test: book chromium
	$(PY) -m pytest tests --nbmake --nbmake-timeout=300 notebooks -p no:cacheprovider

test-unit: install
	$(PY) -m pytest tests -m "not book" -p no:cacheprovider

# On a machine with a CUDA GPU: run the GPU tests, then record the benchmarks the book shows to
# readers without a GPU (commit the JSON files this writes).
gpu: install
	$(PY) -m pytest tests -m gpu -p no:cacheprovider
	$(PY) -m labutils.gpu.bench --all --out labutils/data/gpu/

# JupyterLab asks "Would you like to get notified about official Jupyter news?" on first start;
# answer "no" once in the repo's own settings (a later choice in Settings is kept), and fetch none.
LAB_NOTIFICATION := $(JUPYTER_CONFIG_DIR)/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings
$(LAB_NOTIFICATION):
	mkdir -p $(dir $@)
	echo '{"fetchNews": "false", "checkForUpdates": false}' > $@

lab: install $(LAB_NOTIFICATION)
	$(VENV)/bin/jupyter lab --LabApp.news_url=None notebooks/

exercises: install
	$(PY) exercises/tools/release.py

grade: install
	$(PY) exercises/tools/grade.py

feedback: install
	$(PY) exercises/tools/feedback.py

student: install
	$(PY) exercises/tools/student_edition.py

clean:
	rm -rf $(VENV) book/_build book/vendor .jupyter .pytest_cache .hypothesis
	rm -rf exercises/release exercises/autograded exercises/feedback exercises/gradebook.db
	find . -name __pycache__ -prune -exec rm -rf {} +
