// PyTorch binding of the upfirdn2d kernel: checks arguments, sizes the output, launches on the current stream.

#include <torch/extension.h>
#include "ops_device.h"
#include "upfirdn2d.h"

//------------------------------------------------------------------------

static int dtype_code(const torch::Tensor& t)
{
    switch (t.scalar_type())
    {
    case torch::kFloat32: return UPFIRDN2D_FLOAT32;
    case torch::kFloat16: return UPFIRDN2D_FLOAT16;
    case torch::kFloat64: return UPFIRDN2D_FLOAT64;
    default: TORCH_CHECK(false, "upfirdn2d: x must be float16, float32 or float64, got ", t.scalar_type());
    }
    return -1;
}

// x: [N, C, H, W]; w: float32 [taps_h, taps_w], applied as a correlation (flip and gain already in it).
// Returns [N, C, out_h, out_w] with x's memory format (contiguous or channels_last).
static torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor w, int64_t up_x, int64_t up_y, int64_t down_x,
                               int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1)
{
    TORCH_CHECK(OPS_ON_DEVICE(x) && x.dim() == 4, "upfirdn2d: x must be a 4-D " OPS_DEVICE_NAME " tensor");
    TORCH_CHECK(OPS_ON_DEVICE(w) && w.dim() == 2 && w.scalar_type() == torch::kFloat32, "upfirdn2d: w must be a 2-D float32 " OPS_DEVICE_NAME " tensor");
    TORCH_CHECK(w.device() == x.device(), "upfirdn2d: w must be on x's device");
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d: up and down must be >= 1");
    const int code = dtype_code(x);
    OPS_DEVICE_GUARD(x);
    w = w.contiguous();

    const int64_t in_h = x.size(2), in_w = x.size(3);
    const int64_t taps_h = w.size(0), taps_w = w.size(1);
    const int64_t out_h = (in_h * up_y + pad_y0 + pad_y1 - taps_h + down_y) / down_y;
    const int64_t out_w = (in_w * up_x + pad_x0 + pad_x1 - taps_w + down_x) / down_x;
    TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: the padding and filter leave an empty output");
    TORCH_CHECK(in_h * up_y <= INT32_MAX / 2 && in_w * up_x <= INT32_MAX / 2 && x.size(0) * x.size(1) <= INT32_MAX,
                "upfirdn2d: image too large for this kernel's 32-bit pixel coordinates");

    const bool channels_last = x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
    torch::Tensor y = torch::empty({x.size(0), x.size(1), out_h, out_w},
                                   x.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));

    UpFirDn2dArgs args;
    args.x = x.data_ptr();
    args.w = w.data_ptr<float>();
    args.y = y.data_ptr();
    args.dtype = code;
    args.n = (int)x.size(0); args.c = (int)x.size(1);
    args.in_h = (int)in_h; args.in_w = (int)in_w;
    args.out_h = (int)out_h; args.out_w = (int)out_w;
    args.taps_h = (int)taps_h; args.taps_w = (int)taps_w;
    args.up_x = (int)up_x; args.up_y = (int)up_y;
    args.down_x = (int)down_x; args.down_y = (int)down_y;
    args.pad_x0 = (int)pad_x0; args.pad_y0 = (int)pad_y0;
    for (int i = 0; i < 4; i++)
    {
        args.x_stride[i] = x.stride(i);
        args.y_stride[i] = y.stride(i);
    }
    args.channels_last = channels_last ? 1 : 0;
    cudaError_t status = upfirdn2d_launch(args, OPS_CURRENT_STREAM());
    TORCH_CHECK(status == cudaSuccess, "upfirdn2d: kernel launch failed: ", cudaGetErrorString(status));
    return y;
}

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter, downsample (CUDA)");
}
