# Course jobs. Each target runs a Python entry point (python -m segedu.instructor ...), so Windows
# users without make can run the same commands with the venv's python.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# nbgrader starts `alembic` from PATH when it creates a gradebook.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export FIFTYONE_DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: course test lab release check-release selfcheck links bench checkpoints clean grade mutants colab-versions site formgrader

# PYTHONWARNINGS=ignore: setuptools warns that any editable install could be shadowed by a same-named
# folder, which a newcomer can't act on.
$(VENV)/.installed: pyproject.toml constraints-local.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -c constraints-local.txt -e '.[coco,instructor,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

course: $(VENV)/.installed  ## run lectures, regenerate exercises/, self-check grading, print a table
	$(PY) -m segedu.instructor course

test: $(VENV)/.installed  ## the whole test suite, in timed stages; STAGE=unit runs one (see segedu/instructor/testrun.py)
	$(PY) -m segedu.instructor test $(if $(STAGE),--stage $(STAGE))

lab: $(VENV)/.installed  ## JupyterLab on the course (ARGS="--port 8890" and other JupyterLab options)
	$(PY) -m segedu.instructor lab $(ARGS)

site: $(VENV)/.installed  ## the course website from the executed lectures (reuses make course's runs): build/site/
	$(PY) -m segedu.instructor site $(ARGS)

formgrader: $(VENV)/.installed  ## grade assignment 11's report by hand: make formgrader OUT=../grading/11
	$(PY) -m segedu.instructor formgrader --out "$(OUT)" $(ARGS)

bench: $(VENV)/.installed  ## every speed figure against the COURSE.md budgets: one table, build/bench.csv
	$(PY) -m segedu.instructor bench

checkpoints: $(VENV)/.installed  ## retrain every shipped checkpoint (or NAMES="a b") from its recipe and seed, record its provenance
	$(PY) -m segedu.instructor checkpoints $(NAMES)

release: $(VENV)/.installed  ## regenerate exercises/ from solutions/
	$(PY) -m segedu.instructor release

check-release: $(VENV)/.installed  ## fail if exercises/ is stale
	$(PY) -m segedu.instructor check-release

mutants: $(VENV)/.installed  ## mutation testing of the graded notebooks: fails below 90 % killed per exercise (ARGS="03_regions")
	$(PY) -m segedu.instructor mutants $(ARGS)

colab-versions: $(VENV)/.installed  ## the numpy units on Colab's package versions, in a venv at build/colab-venv
	$(PY) -m segedu.instructor.colab_versions --venv build/colab-venv

selfcheck: $(VENV)/.installed
	$(PY) -m segedu.instructor selfcheck

links: $(VENV)/.installed  ## rewrite Colab badges and setup cells from segedu/_course.py
	$(PY) -m segedu.instructor links

grade: $(VENV)/.installed  ## make grade ASSIGNMENT=01_thresholding SUBMISSIONS=canvas.zip OUT=../grading [ARGS="--jobs 4"]
	$(PY) -m segedu.instructor grade $(ASSIGNMENT) "$(SUBMISSIONS)" --out "$(OUT)" $(ARGS)

clean:
	rm -rf build .pytest_cache
