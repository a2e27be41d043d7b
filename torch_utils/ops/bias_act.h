// Interface between the bias_act binding (bias_act.cpp, built against PyTorch) and its kernel
// (bias_act.cu, plain CUDA), so the kernel compiles without PyTorch headers.

#pragma once
#include <cstdint>
#include <cuda_runtime_api.h>

enum BiasActDtype { BIAS_ACT_FLOAT32 = 0, BIAS_ACT_FLOAT16 = 1, BIAS_ACT_FLOAT64 = 2 };

// Activation numbers; bias_act.py's activation table uses the same ones.
enum BiasActKind {
    BIAS_ACT_LINEAR = 1, BIAS_ACT_RELU = 2, BIAS_ACT_LRELU = 3, BIAS_ACT_TANH = 4, BIAS_ACT_SIGMOID = 5,
    BIAS_ACT_ELU = 6, BIAS_ACT_SELU = 7, BIAS_ACT_SOFTPLUS = 8, BIAS_ACT_SWISH = 9
};

struct BiasActArgs {
    const void* x;          // Input, numel elements, dense in memory; nullptr when y is given.
    const void* b;          // Bias [bias_size] or nullptr.
    const void* y;          // Order 0's output, read instead of x (and b) for order 1 of linear, relu and
                            // lrelu (alpha >= 0), whose slope the output's sign decides; nullptr otherwise.
    const void* dy;         // Incoming gradient, same layout as x (order >= 1) or nullptr.
    void*       out;        // Output, same layout as x.
    int64_t     numel;      // Elements of x.
    int64_t     bias_size;  // Length of the bias dimension.
    int64_t     bias_step;  // Memory stride of the bias dimension in x.
    int         dtype;      // BiasActDtype of x, b, dy and out.
    int         act;        // BiasActKind.
    int         order;      // 0: clamp(act(x + b) * gain); 1: dy * d/dx of that; 2: dy * d2/dx2 of that.
                            // From y, an output at +-clamp counts as clamped (zero derivative).
    double      alpha;      // Activation parameter (lrelu slope).
    double      gain;       // Output scale.
    double      clamp;      // Clamp magnitude, negative for none.
};

// Launches the kernel on `stream`; returns the launch status.
cudaError_t bias_act_launch(const BiasActArgs& args, cudaStream_t stream);
