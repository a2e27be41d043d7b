#!/usr/bin/env bash
# README demo, offline and on CPU: build the built-in digits dataset at 16x16, train a small class-conditional
# squeeze-connection generator for about 6 minutes (2 cores), then show what it learned: progress.png (the same
# samples at every snapshot, noise to digits) and a grid of one digit from generate.py. Safe to re-run: the
# dataset is built once, and every run trains in a new numbered run directory under .demo/runs, so earlier runs
# and their images are never touched. DEMO_KIMG (default 50) sets the training length in thousands of images.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
setup_env demo
cd "$REPO_ROOT"

DEMO_DIR="$REPO_ROOT/.demo"
DATA="$DEMO_DIR/digits16.zip"
RUNS="$DEMO_DIR/runs"
KIMG="${DEMO_KIMG:-50}"
mkdir -p "$DEMO_DIR"
TRAIN_LOG="$(mktemp)"
trap 'rm -f "$TRAIN_LOG"' EXIT

if [ -f "$DATA" ]; then
    echo "[demo] dataset $DATA already built"
else
    echo "[demo] building $DATA from the built-in handwritten digits (8x8 originals, shown at 16x16)"
    python dataset_tool.py --source=builtin:digits --dest="$DATA" --width=16
fi

# Labels (--cond=1) keep a generator this small from collapsing onto a few digits; one grid row per digit.
# --pl-weight=0: no path-length pass, about 20% faster, and the samples vary more within a class (0.67 against
# 0.58 of the real digits' variety, scripts/demo_variety.py; docs/readme_numbers.md).
# --workers=0: the 16x16 digits load in no time, so both cores train (a DataLoader worker would take one).
# Settings and their cost are in docs/benchmarks.md and docs/readme_numbers.md (about 7 sec/kimg on 2 cores).
echo "[demo] training a conditional squeeze generator on CPU for $KIMG kimg (about 7 seconds per kimg on 2 cores)"
python train.py --outdir="$RUNS" --data="$DATA" --device=cpu --cfg=auto --g-arch=squeeze --cond=1 \
    --cbase=1024 --cmax=64 --map=2 --batch=32 --gamma=0.05 --pl-weight=0 --kimg="$KIMG" --tick=5 --snap=2 --grid=8x10 \
    --aug=noaug --metrics=none --workers=0 | tee "$TRAIN_LOG"

# The run directory train.py just made is named in its first line of output.
RUN_DIR="$(sed -n 's/^Training in //p' "$TRAIN_LOG" | head -n 1)"
SNAPSHOT="$(ls "$RUN_DIR"/network-snapshot-*.pkl | sort | tail -n 1)"
python scripts/progress_image.py "$RUN_DIR"
echo "[demo] sampling 36 sevens from $SNAPSHOT"
python generate.py --network="$SNAPSHOT" --seeds=0-35 --class=7 --grid --device=cpu --outdir="$RUN_DIR/generated"

echo "[demo] done: $RUN_DIR"
echo "[demo]   progress.png          the same samples (one row per digit) at every snapshot, top to bottom"
echo "[demo]   reals.png             training images"
echo "[demo]   fakes*.png            generator samples during training"
echo "[demo]   $(basename "$SNAPSHOT")  the last snapshot (load it with generate.py or calc_metrics.py)"
echo "[demo]   generated/grid.png    36 sevens from generate.py --class=7"
