# Two commands do all the set-up on a fresh machine (Python 3.11+, Java 17+):
#   make run    - create .venv if absent, then score INPUT with the shipped model into OUTPUT
#   make test   - create .venv if absent, then run every test
VENV ?= .venv
PYTHON ?= python3
INPUT ?= ../shared/data/utkface
OUTPUT ?= out/predictions

BIN := $(abspath $(VENV))/bin
# Spark's Python workers use the venv's interpreter; Spark's own log starts at WARN.
export PYSPARK_PYTHON := $(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(BIN)/python
export SPARK_CONF_DIR := $(abspath conf/spark)
export SPARK_LOCAL_IP ?= 127.0.0.1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run profile train train-detect keras-model student-keras-model train-student train-distilled-ensemble train-student-fair train-student-dlib image test test-fast lint check-java

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "sparkface needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

check-java:
	@java -version >/dev/null 2>&1 || { echo "Spark needs Java 17 or newer on PATH"; exit 1; }

run: $(VENV)/.installed check-java
	$(BIN)/spark-submit jobs/score.py --input $(INPUT) --output $(OUTPUT)

profile: $(VENV)/.installed check-java
	$(BIN)/spark-submit jobs/profile_faces.py --input $(INPUT) --output out/profile

# The crop-trained ensemble (train-detect starts from it): three networks trained on the same
# shards (the first run's, copied), then
# averaged into one package in out/ensemble, the class weights taken out of the age-group head
# (models/README.md).
MEMBERS := seed2 seed3
train: $(VENV)/.installed check-java
	$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output out/train \
		--config conf/models/sparkface-cnn.yaml
	for member in $(MEMBERS); do \
		rm -rf out/train-$$member/shards && mkdir -p out/train-$$member && \
		cp -r out/train/shards out/train/preparation.json out/train/config.yaml out/train-$$member/ && \
		$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output out/train-$$member \
			--config conf/models/sparkface-cnn-$$member.yaml --reuse-shards || exit 1; \
	done
	$(BIN)/python jobs/ensemble.py --shards out/train/shards --output out/ensemble \
		--undo-class-weights age_group \
		--members out/train/model $(MEMBERS:%=out/train-%/model)

# The ensemble (shipped from issue 13 until the student, now the teacher): the crop-trained
# ensemble above (as committed at 911cc5e, taken from git into out/sparkface-cnn-crops) with each
# network trained further on faces as `--faces detect` gives them, then averaged again.
CROPS_MODEL := out/sparkface-cnn-crops
DETECT_MEMBERS := m1 m2
train-detect: $(VENV)/.installed check-java
	$(call from_git,911cc5e,$(CROPS_MODEL),model.keras model.json preparation.json)
	$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output out/train-detect \
		--config conf/models/sparkface-cnn-detect.yaml
	for member in $(DETECT_MEMBERS); do \
		rm -rf out/train-detect-$$member/shards && mkdir -p out/train-detect-$$member && \
		cp -r out/train-detect/shards out/train-detect/preparation.json \
			out/train-detect/config.yaml out/train-detect-$$member/ && \
		$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output out/train-detect-$$member \
			--config conf/models/sparkface-cnn-detect-$$member.yaml --reuse-shards || exit 1; \
	done
	$(BIN)/python jobs/ensemble.py --shards out/train-detect/shards --output out/ensemble-detect \
		--undo-class-weights age_group \
		--members out/train-detect/model $(DETECT_MEMBERS:%=out/train-detect-%/model)

# $(call from_git,COMMIT,DIR,FILES): the files of models/sparkface-cnn as committed at COMMIT, into DIR.
from_git = for file in $(3); do mkdir -p $$(dirname $(2)/$$file) && \
	git show $(1):models/sparkface-cnn/$$file > $(2)/$$file || exit 1; done

# The ensemble as Keras (the teacher; shipped until the student, converted to TFLite int8):
# from git, as committed at 8eca0d4, into out/sparkface-cnn-keras.
KERAS_MODEL := out/sparkface-cnn-keras
keras-model:
	$(call from_git,8eca0d4,$(KERAS_MODEL),model.keras model.json preparation.json \
		members/m0-history.csv members/m1-history.csv members/m2-history.csv)

# The shipped student as Keras (the package ships converted to TFLite int8 weights): from git, as
# committed at 63e446c, into out/sparkface-cnn-student-keras. make train-student STUDENT=... with
# student-m2, student-m2-swa, student-m2-swa-age, student-m2-swa-lowdrop, in that order, trains it
# again (models/README.md).
STUDENT_KERAS_MODEL := out/sparkface-cnn-student-keras
student-keras-model:
	$(call from_git,63e446c,$(STUDENT_KERAS_MODEL),model.keras model.json preparation.json history.csv)

# One network distilled from the ensemble that train-detect builds (conf/models/sparkface-cnn-
# student.yaml: started from its first member, targets mixing its predictions with the labels).
STUDENT := student
train-student: $(VENV)/.installed check-java
	rm -rf out/train-$(STUDENT)/shards && mkdir -p out/train-$(STUDENT) && \
		cp -r out/train-detect/shards out/train-detect/preparation.json \
			out/train-detect/config.yaml out/train-$(STUDENT)/
	$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output out/train-$(STUDENT) \
		--config conf/models/sparkface-cnn-$(STUDENT).yaml --reuse-shards

# The ensemble's three networks each distilled from the whole ensemble (the student above for m0,
# conf/models/sparkface-cnn-student-m1.yaml and -m2.yaml), then averaged without class weights to
# undo (the students learnt the teacher's probabilities): an ensemble trained to give from one look
# at a face what its teacher gives from the face and its mirror image (issue 16).
DISTILLED_MEMBERS := student student-m1 student-m2
train-distilled-ensemble: $(VENV)/.installed check-java
	for student in $(DISTILLED_MEMBERS); do $(MAKE) train-student STUDENT=$$student || exit 1; done
	$(BIN)/python jobs/ensemble.py --shards out/train-detect/shards --output out/ensemble-distilled \
		--members $(DISTILLED_MEMBERS:%=out/train-%/model)

# The student with its gender loss weighted per race x gender cell.
train-student-fair:
	$(MAKE) train-student STUDENT=student-fair

# The student that also learns dlib's face descriptors (a second teacher, issue 16): the same
# shards with each face's descriptor added on the executors (jobs/describe_faces.py).
DESCRIBED := out/train-student-dlib
train-student-dlib: $(VENV)/.installed check-java
	rm -rf $(DESCRIBED) && mkdir -p $(DESCRIBED) && \
		cp out/train-detect/preparation.json out/train-detect/config.yaml $(DESCRIBED)/
	$(BIN)/spark-submit jobs/describe_faces.py --shards out/train-detect/shards \
		--input $(INPUT) --output $(DESCRIBED)/shards
	$(BIN)/spark-submit jobs/train.py --input $(INPUT) --output $(DESCRIBED) \
		--config conf/models/sparkface-cnn-student-dlib.yaml --reuse-shards

# The container image sparkface:VERSION, built here with podman from a local Debian base and a
# wheelhouse (scripts/build_image.sh; installs podman, runc and mmdebstrap with apt if missing).
image: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/build_image.sh

test: $(VENV)/.installed check-java
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed check-java
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
