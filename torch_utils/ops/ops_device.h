// Where the bindings' tensors live. Normally CUDA: the extension a GPU machine builds on first use. With
// SQUEEZEGAN_HOST_KERNELS defined, the CPU: the test build of the same .cpp and .cu files, whose launch
// functions loop over the kernels' per-element code on the host (tests/ops_helpers.py builds it), so the
// bindings' checks and layout handling are tested as written.

#pragma once

#ifdef SQUEEZEGAN_HOST_KERNELS
#define OPS_ON_DEVICE(t) ((t).is_cpu())
#define OPS_DEVICE_NAME "CPU"
#define OPS_DEVICE_GUARD(t) ((void)0)
#define OPS_CURRENT_STREAM() ((cudaStream_t)nullptr)
#else
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define OPS_ON_DEVICE(t) ((t).is_cuda())
#define OPS_DEVICE_NAME "CUDA"
#define OPS_DEVICE_GUARD(t) const c10::cuda::CUDAGuard device_guard((t).device())
#define OPS_CURRENT_STREAM() (c10::cuda::getCurrentCUDAStream().stream())
#endif
