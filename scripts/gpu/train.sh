#!/usr/bin/env bash
# Train student recipes on a GPU machine that has Python, JAX and a GPU but neither TensorFlow nor
# Spark (the network is backend-neutral Keras 3; jobs/fit.py trains without Spark). The .keras
# packages it writes load here with TensorFlow. docs/gpu.md says how the steps are run:
#
#   scripts/gpu/train.sh bundle          # here: .gpu/ = the shards as WebP, Keras's wheels
#   scripts/gpu/train.sh setup           # there: wheels installed, .gpu/ kept in /tmp
#   scripts/gpu/train.sh train RECIPE... # there: shards unpacked and checked, one jobs/fit.py per
#                                        # recipe, side by side
#
# A RECIPE is a name (conf/models/sparkface-cnn-NAME.yaml) or a recipe's path (NAME its file name
# less .yaml). `train` needs the recipes' initial model and teacher under out/ (for the student
# rounds, out/train-student-m2-swa-lowdrop/model and out/ensemble-detect), and writes each
# package's model file and a tarball of its log, descriptor and training files to $OUT (or
# out/gpu). The shards are SHARDS_FROM's (default out/train-detect, `make train-detect`),
# unpacked in /tmp. .gpu/ may arrive in parts, one per call: each step adds what it finds to the
# copy in /tmp. With PARTS_MB, `bundle` moves the shard files into .gpu/part1, .gpu/part2, ...
# of at most that many megabytes each (a call carries at most 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/../.."
SITE=${SITE:-/tmp/sparkface-site}
STAGE=${STAGE:-/tmp/sparkface-gpu}
PYTHON=${PYTHON:-python3}
RESULTS=${OUT:-out/gpu}
FACES=${FACES:-../shared/data/utkface}
# Each recipe's time limit. The first epoch compiles (about 75 s on the H200) before it trains.
FIT_SECONDS=${FIT_SECONDS:-3600}
SHARDS_FROM=${SHARDS_FROM:-out/train-detect}
# Where each recipe's run folder (train-NAME) is made.
RUNS=${RUNS:-out}

# .gpu/ (and each .gpu/partN/ in it, merged) added to the copy in /tmp.
stage() {
	mkdir -p "$STAGE"
	if [ ! -d .gpu ]; then return; fi
	find .gpu -mindepth 1 -maxdepth 1 ! -name 'part*' -exec cp -r {} "$STAGE/" \;
	for part in .gpu/part*/; do
		if [ -d "$part" ]; then cp -r "$part". "$STAGE/"; fi
	done
}

# A recipe's path and name: conf/models/sparkface-cnn-NAME.yaml, or a path given.
recipe_path() {
	if [ -f "$1" ]; then echo "$1"; else echo "conf/models/sparkface-cnn-$1.yaml"; fi
}
recipe_name() {
	basename "$(recipe_path "$1")" .yaml | sed 's/^sparkface-cnn-//'
}

case "${1:-}" in
bundle)
	rm -rf .gpu && mkdir -p .gpu/wheels .gpu/meta
	cp "$SHARDS_FROM"/preparation.json "$SHARDS_FROM"/config.yaml .gpu/meta/
	# The faces' size as the shards were prepared; WEBP_QUALITY=Q packs them lossy (docs/gpu.md).
	size=$(.venv/bin/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["image_size"])' \
		"$SHARDS_FROM"/config.yaml)
	.venv/bin/python scripts/gpu/shards_webp.py pack "$SHARDS_FROM"/shards .gpu/shards \
		--splits train validation test --image-size "$size" ${WEBP_QUALITY:+--quality "$WEBP_QUALITY"}
	if [ -n "${PARTS_MB:-}" ]; then
		.venv/bin/python scripts/gpu/shards_webp.py parts .gpu "$PARTS_MB"
	fi
	# Keras and what the run needs beyond the GPU machine's packages (scripts/gpu/environment.py),
	# for each Python it may have.
	for version in $(.venv/bin/python scripts/gpu/environment.py pythons); do
		.venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: \
			--python-version "$version" --implementation cp --platform manylinux_2_28_x86_64 \
			--platform manylinux_2_17_x86_64 -d .gpu/wheels \
			$(.venv/bin/python scripts/gpu/environment.py wheels)
	done
	du -sh .gpu/*
	# What each call to the machine carries and runs (exit 1 if one carries too much).
	.venv/bin/python scripts/gpu/shards_webp.py calls .gpu
	;;
setup)
	stage
	# pip picks each requirement's wheel for this Python from the bundle.
	$PYTHON -m pip install --quiet --no-index --find-links "$STAGE"/wheels --no-deps --no-compile \
		--upgrade --target "$SITE" $($PYTHON scripts/gpu/environment.py wheels)
	# Everything a run imports, before any shards travel (exit 1 naming what is missing).
	PYTHONPATH="$SITE:$PWD" KERAS_BACKEND=jax $PYTHON scripts/gpu/environment.py check
	PYTHONPATH="$SITE:$PWD" KERAS_BACKEND=jax $PYTHON -c 'from sparkface.train.fit import accelerator
print("on", accelerator())'
	;;
train)
	shift
	stage
	# Unpacked in /tmp, never over out/train-detect (this script may be tried on the CPU machine).
	shards=$STAGE/unpacked
	rm -rf "$shards" && mkdir -p "$RESULTS"
	PYTHONPATH="$SITE:$PWD" $PYTHON scripts/gpu/shards_webp.py unpack "$STAGE/shards" "$shards"
	pids=()
	for recipe in "$@"; do
		run=$RUNS/train-$(recipe_name "$recipe")
		rm -rf "$run" && mkdir -p "$run"
		ln -s "$shards" "$run/shards"
		cp "$STAGE"/meta/preparation.json "$STAGE"/meta/config.yaml "$run/"
		PYTHONPATH="$SITE:$PWD" KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false \
			PYTHONUNBUFFERED=1 timeout "$FIT_SECONDS" $PYTHON jobs/fit.py --output "$run" \
			--input "$FACES" --config "$(recipe_path "$recipe")" >"$run/fit.log" 2>&1 &
		pids+=($!)
	done
	status=0
	for pid in "${pids[@]}"; do wait "$pid" || status=1; done
	# Two files a recipe (a call returns at most 8): the model, and a tarball of the rest that
	# exists. A run stopped at FIT_SECONDS has no model: its best epoch's weights come back
	# instead (RECIPE.best.weights.h5; the epoch is in the history; research/jobs/untrained.py
	# --weights packages them), with its log and history.
	for recipe in "$@"; do
		name=$(recipe_name "$recipe")
		run=$RUNS/train-$name
		if [ -f "$run/model/model.keras" ]; then
			cp "$run/model/model.keras" "$RESULTS/$name.keras"
		elif [ -f "$run/training/best.weights.h5" ]; then
			cp "$run/training/best.weights.h5" "$RESULTS/$name.best.weights.h5"
		fi
		files=()
		for file in fit.log model/model.json training/history.csv training/training.json \
			summary.json config.yaml evaluation; do
			if [ -e "$run/$file" ]; then files+=("$file"); fi
		done
		tar -czf "$RESULTS/$name.tar.gz" -C "$run" "${files[@]}"
	done
	exit $status
	;;
*)
	sed -n '2,21p' "$0"
	exit 2
	;;
esac
