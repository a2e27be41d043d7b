#!/usr/bin/env bash
# The first GPU run, in one command: build the ops, run `pytest -m gpu`, the op benchmarks, the host-sync count
# of training steps and skip vs squeeze training speed at the cifar and paper256 presets, and append one dated
# section to docs/benchmarks.md. Everything runs with SQUEEZEGAN_OPS=cuda: a kernel that fails to build or to
# pass its self-check is an error naming it, never a silent reference run, and the report names each op's path.
# Budget: under 9 minutes on an H100/H200 (each step has its own time limit). Raw outputs go to $OUT (or a
# temporary folder). PYTHON selects the interpreter (default python3).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
LOGS="${OUT:-$(mktemp -d)}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" SQUEEZEGAN_OPS=cuda
step() { echo "[acceptance] $*" >&2; }

step "device and copy bandwidth"
if ! DEVICE=$("$PY" -c 'import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else "")' 2>/dev/null) \
        || [ -z "$DEVICE" ]; then
    echo "gpu_acceptance: $PY finds no CUDA device here (no torch, or torch.cuda.is_available() is False); run it on the GPU machine" >&2
    exit 1
fi
COPY_GBPS=$("$PY" - <<'PY'
import torch
x = torch.empty(512 * 2**20, dtype=torch.float32, device='cuda'); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(20): y.copy_(x)
end.record(); torch.cuda.synchronize()
print(f'{2 * x.numel() * 4 * 20 / (start.elapsed_time(end) / 1e3) / 1e9:.1f}')
PY
)

step "building the CUDA ops (first use compiles with ninja) and their self-checks"
timeout 300 "$PY" -c 'from torch_utils.ops import paths; print(paths.describe("cuda:0"))' 2>&1 | tee "$LOGS/build.txt"

step "pytest -m gpu"
timeout 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider --junitxml="$LOGS/pytest_gpu.xml" 2>&1 | tee "$LOGS/pytest_gpu.txt" | tail -n 20

step "op benchmarks"
timeout 90 "$PY" bench/ops.py --device=cuda --reps=20 2>&1 | tee "$LOGS/ops.txt"

step "host synchronisations in training steps between ticks"
timeout 120 "$PY" bench/host_syncs.py --device=cuda 2>&1 | tee "$LOGS/syncs.txt" | grep '^{'

step "training speed: cifar and paper256, skip vs squeeze"
: > "$LOGS/train.txt"
timeout 100 "$PY" bench/train_speed.py --cfg=cifar --res=32 --g-arch=skip,squeeze --device=cuda --steps=20 --warmup=3 2>&1 | tee -a "$LOGS/train.txt" | grep '^{'
timeout 160 "$PY" bench/train_speed.py --cfg=paper256 --res=256 --g-arch=skip,squeeze --device=cuda --steps=10 --warmup=3 2>&1 | tee -a "$LOGS/train.txt" | grep '^{'

step "writing docs/benchmarks.md"
"$PY" bench/acceptance_report.py --device="$DEVICE" --date="$(date +%Y-%m-%d)" --command="bash bench/gpu_acceptance.sh" \
    --pytest-log="$LOGS/pytest_gpu.txt" --copy-gbps="$COPY_GBPS" --ops-log="$LOGS/ops.txt" --train-log="$LOGS/train.txt" \
    --syncs-log="$LOGS/syncs.txt" --pytest-xml="$LOGS/pytest_gpu.xml" \
    > "$LOGS/section.md" && { echo; cat "$LOGS/section.md"; } >> docs/benchmarks.md && cat "$LOGS/section.md"
