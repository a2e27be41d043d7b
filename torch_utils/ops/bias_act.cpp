// PyTorch binding of the bias_act kernel: checks arguments, matches layouts, launches on the current stream.

#include <torch/extension.h>
#include "ops_device.h"
#include "bias_act.h"

//------------------------------------------------------------------------

static int dtype_code(const torch::Tensor& t)
{
    switch (t.scalar_type())
    {
    case torch::kFloat32: return BIAS_ACT_FLOAT32;
    case torch::kFloat16: return BIAS_ACT_FLOAT16;
    case torch::kFloat64: return BIAS_ACT_FLOAT64;
    default: TORCH_CHECK(false, "bias_act: x must be float16, float32 or float64, got ", t.scalar_type());
    }
    return -1;
}

// x, b: input and bias (empty tensor for none). y: order 0's output, given instead of x and b for
// order 1 of linear, relu and lrelu (empty otherwise). dy: incoming gradient for order >= 1 (empty for 0).
// Returns a tensor with the memory layout of x (or y): contiguous or channels_last.
static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor y, torch::Tensor dy, int64_t dim,
                              int64_t act, int64_t order, double alpha, double gain, double clamp)
{
    const bool from_output = y.numel() > 0;
    TORCH_CHECK(order >= 0 && order <= 2, "bias_act: order must be 0, 1 or 2, got ", order);
    TORCH_CHECK(!from_output || (order == 1 && b.numel() == 0 && act >= BIAS_ACT_LINEAR && act <= BIAS_ACT_LRELU && alpha >= 0),
                "bias_act: y replaces x and b only for order 1 of linear, relu and lrelu with alpha >= 0");
    torch::Tensor src = from_output ? y : x;  // The tensor the kernel walks, element by element.
    TORCH_CHECK(OPS_ON_DEVICE(src), "bias_act: x and y must be " OPS_DEVICE_NAME " tensors");
    TORCH_CHECK(dim >= 0 && dim < src.dim(), "bias_act: dim ", dim, " is out of range for ", src.dim(), "-D x");
    const int code = dtype_code(src);
    OPS_DEVICE_GUARD(src);

    // The kernel walks memory linearly, so src must be dense and dy must share its strides.
    if (!src.is_non_overlapping_and_dense())
        src = src.contiguous();
    const bool has_bias = b.numel() > 0;
    if (has_bias)
    {
        TORCH_CHECK(b.dim() == 1 && b.size(0) == src.size(dim), "bias_act: b must have shape [", src.size(dim), "]");
        TORCH_CHECK(b.device() == src.device() && b.scalar_type() == src.scalar_type(), "bias_act: b must match x in device and dtype");
        b = b.contiguous();
    }
    if (order > 0)
    {
        TORCH_CHECK(dy.sizes() == src.sizes(), "bias_act: dy must have the shape of x");
        TORCH_CHECK(dy.device() == src.device() && dy.scalar_type() == src.scalar_type(), "bias_act: dy must match x in device and dtype");
        if (dy.strides() != src.strides())
            dy = torch::empty_like(src).copy_(dy);
    }
    torch::Tensor out = torch::empty_like(src);

    BiasActArgs args;
    args.x = from_output ? nullptr : src.data_ptr();
    args.b = has_bias ? b.data_ptr() : nullptr;
    args.y = from_output ? src.data_ptr() : nullptr;
    args.dy = order > 0 ? dy.data_ptr() : nullptr;
    args.out = out.data_ptr();
    args.numel = src.numel();
    args.bias_size = has_bias ? src.size(dim) : 1;
    args.bias_step = has_bias ? src.stride(dim) : 1;
    args.dtype = code;
    args.act = (int)act;
    args.order = (int)order;
    args.alpha = alpha;
    args.gain = gain;
    args.clamp = clamp;
    cudaError_t status = bias_act_launch(args, OPS_CURRENT_STREAM());
    TORCH_CHECK(status == cudaSuccess, "bias_act: kernel launch failed: ", cudaGetErrorString(status));
    return out;
}

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "Fused bias, activation, gain and clamp, or its derivatives (CUDA)");
}
