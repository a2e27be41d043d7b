#!/usr/bin/env bash
# Compiles the custom ops with nvcc, so a syntax or API error fails CI on machines without a GPU:
# the CUDA kernels (torch_utils/ops/*.cu, which include only CUDA headers) and their PyTorch bindings
# (*.cpp, against the installed torch's headers), both with the flags torch.utils.cpp_extension builds them
# with on a GPU machine (custom_ops.extension_flags: PyTorch's C++ standard and nvcc defines, no fast math),
# so that what compiles here is what compiles there. Exits 0 with a message when nvcc is absent, and skips
# the bindings, saying why, when torch or the Python headers are (the kernels then get plain -std=c++17).
# Runs the compilers in parallel (about 30 s on 2 cores).
# Usage: .ci/compile_cuda.sh [extra nvcc flags...]   (PYTHON names the interpreter whose torch to use)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NVCC="${NVCC:-nvcc}"
PYTHON="${PYTHON:-python3}"
if ! command -v "$NVCC" >/dev/null 2>&1; then
    echo "compile_cuda: SKIPPED, nvcc not found (set NVCC or add the CUDA toolkit to PATH)"
    exit 0
fi

shopt -s nullglob
kernels=(torch_utils/ops/*.cu)
bindings=(torch_utils/ops/*.cpp)

# The bindings' flags: torch's and Python's include folders. A CPU-only torch ships the c10/cuda
# headers but not the one its CMake generates; C10_USING_CUSTOM_GENERATED_MACROS skips that one (it
# only sets Windows DLL exports).
flags_status=0
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    binding_flags="SKIP no Python interpreter \"$PYTHON\" (set PYTHON to the one with torch)"
else
    binding_flags="$("$PYTHON" - <<'PY'
import os, sys, sysconfig
def skip(reason):
    print('SKIP ' + reason)
    sys.exit(0)
try:
    from torch.utils import cpp_extension
except Exception as error:  # pylint: disable=broad-except
    skip(f'torch cannot be imported by {sys.executable} ({type(error).__name__})')
python_include = sysconfig.get_paths()['include']
if not os.path.isfile(os.path.join(python_include, 'Python.h')):
    skip(f'no Python.h in {python_include} (install the Python development headers)')
includes = cpp_extension.include_paths()
if not any(os.path.isfile(os.path.join(folder, 'c10', 'cuda', 'CUDAGuard.h')) for folder in includes):
    skip('this torch ships no c10/cuda headers')
flags = ['-I' + folder for folder in includes + [python_include]] + ['-DTORCH_API_INCLUDE_EXTENSION_H']
if not any(os.path.isfile(os.path.join(folder, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h')) for folder in includes):
    flags.append('-DC10_USING_CUSTOM_GENERATED_MACROS')
print(' '.join(flags))
PY
)" || flags_status=$?
fi
status=0
if [[ ${#bindings[@]} -eq 0 ]]; then
    :
elif [[ "$binding_flags" == SKIP* ]]; then
    echo "compile_cuda: SKIPPED the .cpp bindings: ${binding_flags#SKIP }"
    bindings=()
elif [[ $flags_status -ne 0 ]]; then
    echo "$binding_flags"
    echo "compile_cuda: FAILED  to find the bindings' compiler flags with $PYTHON"
    bindings=()
    status=1
fi

kernel_flags="$("$PYTHON" -c 'from torch_utils import custom_ops; print(" ".join(custom_ops.extension_flags()["nvcc"]))' \
    2>/dev/null)" || kernel_flags="-std=c++17"
cxx_standard="$("$PYTHON" -c 'from torch_utils import custom_ops; print(custom_ops.extension_flags()["std"])' \
    2>/dev/null)" || cxx_standard="-std=c++17"
echo "compile_cuda: kernel flags: $kernel_flags"

out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT
sources=("${kernels[@]}" "${bindings[@]}")
pids=()
for source in "${sources[@]}"; do
    name="$(basename "$source")"
    if [[ "$source" == *.cpp ]]; then
        # shellcheck disable=SC2086  # binding_flags is a list of flags.
        flags=($binding_flags "$cxx_standard" "-DTORCH_EXTENSION_NAME=${name%.cpp}_plugin" -Xcompiler -fPIC)
    else
        # shellcheck disable=SC2206  # kernel_flags is a list of flags.
        flags=($kernel_flags)
    fi
    "$NVCC" -c -O1 -Itorch_utils/ops "${flags[@]}" "$@" "$source" -o "$out_dir/$name.o" >"$out_dir/$name.log" 2>&1 &
    pids+=($!)
done

for i in "${!sources[@]}"; do
    if wait "${pids[$i]}"; then
        echo "compile_cuda: ok      ${sources[$i]}"
    else
        cat "$out_dir/$(basename "${sources[$i]}").log"
        echo "compile_cuda: FAILED  ${sources[$i]}"
        status=1
    fi
done
exit $status
