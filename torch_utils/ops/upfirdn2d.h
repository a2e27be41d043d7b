// Interface between the upfirdn2d binding (upfirdn2d.cpp, built against PyTorch) and its kernel
// (upfirdn2d.cu, plain CUDA), so the kernel compiles without PyTorch headers.

#pragma once
#include <cstdint>
#include <cuda_runtime_api.h>

enum UpFirDn2dDtype { UPFIRDN2D_FLOAT32 = 0, UPFIRDN2D_FLOAT16 = 1, UPFIRDN2D_FLOAT64 = 2 };

struct UpFirDn2dArgs {
    const void*  x;                 // Input [N, C, H, W] with strides x_stride (elements).
    const float* w;                 // Filter taps [taps_h, taps_w], contiguous, applied as a correlation.
    void*        y;                 // Output [N, C, out_h, out_w] with strides y_stride.
    int          dtype;             // UpFirDn2dDtype of x and y.
    int          n, c, in_h, in_w;  // Input size.
    int          out_h, out_w;      // Output size.
    int          taps_h, taps_w;    // Filter size.
    int          up_x, up_y;        // Zeros inserted: up - 1 after every input pixel.
    int          down_x, down_y;    // Every down-th pixel is kept.
    int          pad_x0, pad_y0;    // Leading padding of the upsampled image (negative crops).
    int64_t      x_stride[4];       // Strides of x in N, C, H, W order.
    int64_t      y_stride[4];       // Strides of y in N, C, H, W order.
    int          channels_last;     // Nonzero: threads walk y in NHWC order (its memory order).
};

// Launches the kernel on `stream`; returns the launch status.
cudaError_t upfirdn2d_launch(const UpFirDn2dArgs& args, cudaStream_t stream);
