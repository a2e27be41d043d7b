#!/usr/bin/env bash
# README demo, offline and on CPU: build the built-in digits dataset, train a small squeeze-connection
# generator for a few minutes, then sample images from its last snapshot. Safe to re-run: the dataset is
# built once, and every run trains in a new numbered run directory under .demo/runs, so earlier runs and
# their images are never touched. DEMO_KIMG (default 1) sets the training length in thousands of images.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
setup_env demo
cd "$REPO_ROOT"

DEMO_DIR="$REPO_ROOT/.demo"
DATA="$DEMO_DIR/digits32.zip"
RUNS="$DEMO_DIR/runs"
KIMG="${DEMO_KIMG:-1}"
mkdir -p "$DEMO_DIR"
TRAIN_LOG="$(mktemp)"
trap 'rm -f "$TRAIN_LOG"' EXIT

if [ -f "$DATA" ]; then
    echo "[demo] dataset $DATA already built"
else
    echo "[demo] building $DATA from the built-in handwritten digits"
    python dataset_tool.py --source=builtin:digits --dest="$DATA"
fi

echo "[demo] training a squeeze generator on CPU for $KIMG kimg (1.5 to 5 minutes per kimg on 2 cores)"
python train.py --outdir="$RUNS" --data="$DATA" --device=cpu --cfg=auto --g-arch=squeeze \
    --cbase=2048 --cmax=64 --map=2 --batch=16 --kimg="$KIMG" --tick=0.25 --snap=2 \
    --aug=noaug --metrics=none --fp32 --workers=0 | tee "$TRAIN_LOG"

# The run directory train.py just made is named in its first line of output.
RUN_DIR="$(sed -n 's/^Training in //p' "$TRAIN_LOG" | head -n 1)"
SNAPSHOT="$(ls "$RUN_DIR"/network-snapshot-*.pkl | sort | tail -n 1)"
echo "[demo] sampling 36 images from $SNAPSHOT"
python generate.py --network="$SNAPSHOT" --seeds=0-35 --grid --device=cpu --outdir="$RUN_DIR/generated"

echo "[demo] done: $RUN_DIR"
echo "[demo]   reals.png             training images"
echo "[demo]   fakes*.png            generator samples during training"
echo "[demo]   $(basename "$SNAPSHOT")  the last snapshot (load it with generate.py or calc_metrics.py)"
echo "[demo]   generated/grid.png    36 images from generate.py"
