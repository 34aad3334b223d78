# Two commands do all the set-up on a fresh machine (Python 3.11+, Java 17+):
#   make run    - create .venv if absent, then score INPUT with the shipped model into OUTPUT
#   make test   - create .venv if absent, then run every test
VENV ?= .venv
PYTHON ?= python3
INPUT ?= ../shared/data/utkface
OUTPUT ?= out/predictions
# make model: a checkout of github.com/sumanvithaeadala/EthnicityDetection, whence
# research/jobs/fairface_more.py writes data/fairface-more (not needed once that folder exists).
FAIRFACE_MORE_REPO ?=

BIN := $(abspath $(VENV))/bin
# Spark's Python workers use the venv's interpreter; Spark's own log starts at WARN.
export PYSPARK_PYTHON := $(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(BIN)/python
export SPARK_CONF_DIR := $(abspath conf/spark)
export SPARK_LOCAL_IP ?= 127.0.0.1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run profile model model-lineage data-sources image test test-fast lint check-java

# make run installs what scoring needs (a plain install: LiteRT, no TensorFlow); make test and
# make model add the dev extra (Keras on TensorFlow, pytest, ruff, DuckDB, ONNX, JAX).
$(VENV)/.run: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "sparkface needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.run
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

check-java:
	@java -version >/dev/null 2>&1 || { echo "Spark needs Java 17 or newer on PATH"; exit 1; }

run: $(VENV)/.run check-java
	$(BIN)/spark-submit jobs/score.py --input $(INPUT) --output $(OUTPUT)

profile: $(VENV)/.run check-java
	$(BIN)/spark-submit jobs/profile_faces.py --input $(INPUT) --output out/profile

# The shipped model, rebuilt from the data (models/README.md, "How it was made"): one recipe,
# conf/models/sparkface-cnn-scratch.yaml. Its four sources (conf/sources/: UTKFace, FairFace's
# shared 20,000, data/fairface-more from FAIRFACE_MORE_REPO, data/all-age-faces from
# ALL_AGE_FACES_REPO) prepared at 64x64 as --faces detect finds each face, the network trained
# from random weights, converted to TensorFlow Lite with int8 weights into out/sparkface-cnn, and
# its errors measured on the validation faces for the audience shares (audience.json; copy the
# folder to models/ to ship it). About 2 h 30 min on 2 CPU cores. Stopped part-way, it goes on:
# the shards out/train-scratch holds are reused when the recipe's data settings made them, and
# training resumes from its last epoch (remove out/train-scratch to prepare the faces again).
TRAIN := $(BIN)/spark-submit jobs/train.py --input $(INPUT)
# Four sources' faces are held in the driver's memory while shards are written.
WORLD := $(BIN)/spark-submit --driver-memory 6g jobs/train.py
# $(call reuse,FROM,TO): TO starts from FROM's shards and preparation (the same faces, unprepared
# again), so that every network of a stage sees the same data.
reuse = rm -rf $(2) && mkdir -p $(2) && cp -r $(1)/shards $(1)/preparation.json $(1)/config.yaml $(2)/
data-sources: $(VENV)/.dev
	@test -f data/fairface-more/labels.csv || { test -n "$(FAIRFACE_MORE_REPO)" && \
		$(BIN)/python research/jobs/fairface_more.py --repo $(FAIRFACE_MORE_REPO); } || { \
		echo "make model: data/fairface-more is missing; give FAIRFACE_MORE_REPO=CHECKOUT, a clone of" \
		"github.com/sumanvithaeadala/EthnicityDetection (../shared/data/README.md)"; exit 1; }
	@test -f data/all-age-faces/labels.csv || { test -n "$(ALL_AGE_FACES_REPO)" && \
		$(BIN)/python research/jobs/all_age_faces.py --repo $(ALL_AGE_FACES_REPO); } || { \
		echo "make model: data/all-age-faces is missing; give ALL_AGE_FACES_REPO=CHECKOUT, a clone of" \
		"github.com/middleyuan/All-Age-Faces-Dataset (../shared/data/README.md)"; exit 1; }

model: $(VENV)/.dev check-java data-sources
	$(WORLD) --output out/train-scratch --config conf/models/sparkface-cnn-scratch.yaml --reuse-shards
	$(BIN)/python jobs/convert.py --model out/train-scratch/model \
		--shards out/train-scratch/shards --output out/sparkface-cnn --flip yes
	$(BIN)/spark-submit jobs/calibrate.py --model out/sparkface-cnn \
		--source fairface --source utkface --split validation --faces detect --fit-on race=fairface

# The package before (0.1.0+20261205031148), rebuilt through its eight stages, the other twenty
# recipes of conf/models/ (models/README.md, "The package before"): three networks trained on
# crops and averaged, each trained further on faces as --faces detect finds them and averaged
# again (the teacher), the teacher's m2 network taught by the whole teacher in four rounds, then
# trained on UTKFace and FairFace together in two rounds, on all 40,000 FairFace training photos
# twice (UTKFace weighted 1 and 2) and the two averaged, that mean trained on All-Age-Faces too
# and averaged with it, that mean trained at 64x64 in three rounds. About 11 h 40 min on 2 CPU cores.
model-lineage: $(VENV)/.dev check-java data-sources
	$(TRAIN) --output out/train --config conf/models/sparkface-cnn.yaml
	for seed in seed2 seed3; do \
		$(call reuse,out/train,out/train-$$seed) && \
		$(TRAIN) --output out/train-$$seed --config conf/models/sparkface-cnn-$$seed.yaml \
			--reuse-shards || exit 1; \
	done
	$(BIN)/python jobs/ensemble.py --shards out/train/shards --output out/ensemble \
		--undo-class-weights age_group \
		--members out/train/model out/train-seed2/model out/train-seed3/model
	$(TRAIN) --output out/train-detect --config conf/models/sparkface-cnn-detect.yaml
	for member in m1 m2; do \
		$(call reuse,out/train-detect,out/train-detect-$$member) && \
		$(TRAIN) --output out/train-detect-$$member \
			--config conf/models/sparkface-cnn-detect-$$member.yaml --reuse-shards || exit 1; \
	done
	$(BIN)/python jobs/ensemble.py --shards out/train-detect/shards --output out/ensemble-detect \
		--undo-class-weights age_group \
		--members out/train-detect/model out/train-detect-m1/model out/train-detect-m2/model
	for round in m2 m2-swa m2-swa-age m2-swa-lowdrop; do \
		$(call reuse,out/train-detect,out/train-student-$$round) && \
		$(TRAIN) --output out/train-student-$$round \
			--config conf/models/sparkface-cnn-student-$$round.yaml --reuse-shards || exit 1; \
	done
	$(BIN)/spark-submit jobs/train.py --output out/train-world --config conf/models/sparkface-cnn-world.yaml
	$(call reuse,out/train-world,out/train-world-light)
	$(BIN)/spark-submit jobs/train.py --output out/train-world-light \
		--config conf/models/sparkface-cnn-world-light.yaml --reuse-shards
	$(WORLD) --output out/train-world-all --config conf/models/sparkface-cnn-world-all.yaml
	$(WORLD) --output out/train-world-all-utk --config conf/models/sparkface-cnn-world-all-utk.yaml
	$(BIN)/python jobs/soup.py \
		--models out/train-world-all/model out/train-world-all-utk/model --weights 0.5 0.5 \
		--shards out/train-world-all/shards --config conf/models/sparkface-cnn-world-all.yaml \
		--output out/world-soup
	$(WORLD) --output out/train-world-aaf --config conf/models/sparkface-cnn-world-aaf.yaml
	$(BIN)/python jobs/soup.py \
		--models out/train-world-aaf/model out/world-soup --weights 0.5 0.5 \
		--shards out/train-world-aaf/shards --config conf/models/sparkface-cnn-world-aaf.yaml \
		--output out/world-aaf-soup
	$(WORLD) --output out/train-world-64 --config conf/models/sparkface-cnn-world-64.yaml
	for round in 64b 64c; do \
		$(call reuse,out/train-world-64,out/train-world-$$round) && \
		$(WORLD) --output out/train-world-$$round \
			--config conf/models/sparkface-cnn-world-$$round.yaml --reuse-shards || exit 1; \
	done
	$(BIN)/python jobs/convert.py --model out/train-world-64c/model \
		--shards out/train-world-64c/shards --output out/sparkface-cnn --flip yes
	$(BIN)/spark-submit jobs/calibrate.py --model out/sparkface-cnn \
		--source fairface --source utkface --split validation --faces detect --fit-on race=fairface

# The container image sparkface:VERSION, built here with podman from a local Debian base and a
# wheelhouse (scripts/build_image.sh; installs podman, runc and mmdebstrap with apt if missing).
image: $(VENV)/.run
	PYTHON=$(BIN)/python scripts/build_image.sh

test: $(VENV)/.dev check-java
	$(BIN)/python -m pytest

test-fast: $(VENV)/.dev check-java
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
