#!/usr/bin/env bash
# Compiles the custom ops' CUDA kernels (torch_utils/ops/*.cu) to object files, so a syntax error
# fails CI on machines without a GPU. The kernels include only CUDA headers, not PyTorch's.
# Exits 0 with a message when nvcc is absent. Usage: .ci/compile_cuda.sh [extra nvcc flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NVCC="${NVCC:-nvcc}"
if ! command -v "$NVCC" >/dev/null 2>&1; then
    echo "compile_cuda: SKIPPED, nvcc not found (set NVCC or add the CUDA toolkit to PATH)"
    exit 0
fi

out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT
status=0
for source in torch_utils/ops/*.cu; do
    name="$(basename "$source" .cu)"
    if "$NVCC" -c -std=c++17 -O1 -Itorch_utils/ops "$@" "$source" -o "$out_dir/$name.o"; then
        echo "compile_cuda: ok      $source"
    else
        echo "compile_cuda: FAILED  $source"
        status=1
    fi
done
exit $status
