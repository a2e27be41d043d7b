// Upsample (zero insertion), pad, FIR-filter and downsample 2-D images in one pass.
// Each thread computes output pixels directly, visiting only the taps that land on input pixels
// (the inserted zeros are skipped), so the cost does not grow with the upsampling factor.

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "upfirdn2d.h"

//------------------------------------------------------------------------

template <class T> struct Compute { typedef float type; };
template <> struct Compute<double> { typedef double type; };

__host__ __device__ __forceinline__ float  to_compute(float v)  { return v; }
__host__ __device__ __forceinline__ float  to_compute(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ double to_compute(double v) { return v; }
__host__ __device__ __forceinline__ void store(float* p, float v)   { *p = v; }
__host__ __device__ __forceinline__ void store(__half* p, float v)  { *p = __float2half_rn(v); }
__host__ __device__ __forceinline__ void store(double* p, double v) { *p = v; }

// Integer division rounding toward minus infinity, and its ceiling counterpart (b > 0).
__host__ __device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__host__ __device__ __forceinline__ int ceil_div(int a, int b)  { return -floor_div(-a, b); }
__host__ __device__ __forceinline__ int max_int(int a, int b)   { return a > b ? a : b; }
__host__ __device__ __forceinline__ int min_int(int a, int b)   { return a < b ? a : b; }

//------------------------------------------------------------------------

// Output pixel i (in y's memory order). Host-callable too, so the CPU tests can run the same arithmetic.
// I is the index type: 32-bit when the output allows, as 64-bit division is slow on the GPU.
template <class T, class I>
__host__ __device__ void upfirdn2d_pixel(const UpFirDn2dArgs& a, I i)
{
    typedef typename Compute<T>::type C;
    const T* x = (const T*)a.x;
    T* y = (T*)a.y;

    // Output coordinates, with consecutive threads on consecutive memory addresses.
    I rest = i;
    int n, c, oy, ox;
    if (a.channels_last)
    {
        c = (int)(rest % (I)a.c); rest /= (I)a.c;
        ox = (int)(rest % (I)a.out_w); rest /= (I)a.out_w;
        oy = (int)(rest % (I)a.out_h); n = (int)(rest / (I)a.out_h);
    }
    else
    {
        ox = (int)(rest % (I)a.out_w); rest /= (I)a.out_w;
        oy = (int)(rest % (I)a.out_h); rest /= (I)a.out_h;
        c = (int)(rest % (I)a.c); n = (int)(rest / (I)a.c);
    }

    // The window of output (oy, ox) starts at upsampled position (base_y, base_x); input pixel
    // iy sits at upsampled position iy * up_y and meets tap iy * up_y - base_y.
    const int base_y = oy * a.down_y - a.pad_y0;
    const int base_x = ox * a.down_x - a.pad_x0;
    const int iy0 = max_int(ceil_div(base_y, a.up_y), 0);
    const int iy1 = min_int(floor_div(base_y + a.taps_h - 1, a.up_y), a.in_h - 1);
    const int ix0 = max_int(ceil_div(base_x, a.up_x), 0);
    const int ix1 = min_int(floor_div(base_x + a.taps_w - 1, a.up_x), a.in_w - 1);

    const T* x_plane = x + n * a.x_stride[0] + c * a.x_stride[1];
    C acc = C(0);
    for (int iy = iy0; iy <= iy1; iy++)
    {
        const float* w_row = a.w + (int64_t)(iy * a.up_y - base_y) * a.taps_w;
        const T* x_row = x_plane + iy * a.x_stride[2];
        for (int ix = ix0; ix <= ix1; ix++)
            acc += to_compute(x_row[ix * a.x_stride[3]]) * (C)w_row[ix * a.up_x - base_x];
    }
    store(&y[n * a.y_stride[0] + c * a.y_stride[1] + oy * a.y_stride[2] + ox * a.y_stride[3]], acc);
}

#ifndef SQUEEZEGAN_HOST_KERNELS
template <class T, class I>
__global__ void upfirdn2d_kernel(UpFirDn2dArgs a, I total)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x)
        upfirdn2d_pixel<T, I>(a, i);
}

template <class T>
static void launch_typed(const UpFirDn2dArgs& args, int64_t total, unsigned blocks, int threads, cudaStream_t stream)
{
    // The grid-stride loop may step past total before it stops, so 32-bit indices need headroom.
    if (total + (int64_t)blocks * threads < (int64_t)UINT32_MAX)
        upfirdn2d_kernel<T, uint32_t><<<blocks, threads, 0, stream>>>(args, (uint32_t)total);
    else
        upfirdn2d_kernel<T, int64_t><<<blocks, threads, 0, stream>>>(args, total);
}

//------------------------------------------------------------------------

cudaError_t upfirdn2d_launch(const UpFirDn2dArgs& args, cudaStream_t stream)
{
    const int64_t total = (int64_t)args.n * args.c * args.out_h * args.out_w;
    if (total == 0)
        return cudaSuccess;
    const int threads = 256;
    int64_t blocks = (total + threads - 1) / threads;
    if (blocks > 65535L * 16)
        blocks = 65535L * 16;  // Grid-stride loop covers the rest.
    switch (args.dtype)
    {
    case UPFIRDN2D_FLOAT32: launch_typed<float>(args, total, (unsigned)blocks, threads, stream); break;
    case UPFIRDN2D_FLOAT16: launch_typed<__half>(args, total, (unsigned)blocks, threads, stream); break;
    case UPFIRDN2D_FLOAT64: launch_typed<double>(args, total, (unsigned)blocks, threads, stream); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
#else
//------------------------------------------------------------------------
// Host build (ops_device.h): the same output pixels in order on the CPU, with the index type the GPU would use.

template <class T>
static void loop_typed(const UpFirDn2dArgs& args, int64_t total)
{
    if (total < (int64_t)UINT32_MAX)
        for (uint32_t i = 0; i < (uint32_t)total; i++) upfirdn2d_pixel<T, uint32_t>(args, i);
    else
        for (int64_t i = 0; i < total; i++) upfirdn2d_pixel<T, int64_t>(args, i);
}

cudaError_t upfirdn2d_launch(const UpFirDn2dArgs& args, cudaStream_t)
{
    const int64_t total = (int64_t)args.n * args.c * args.out_h * args.out_w;
    switch (args.dtype)
    {
    case UPFIRDN2D_FLOAT32: loop_typed<float>(args, total); break;
    case UPFIRDN2D_FLOAT16: loop_typed<__half>(args, total); break;
    case UPFIRDN2D_FLOAT64: loop_typed<double>(args, total); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}
#endif
