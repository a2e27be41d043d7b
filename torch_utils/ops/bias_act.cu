// Fused bias + activation + gain + clamp, and its first and second derivatives, elementwise.

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include "bias_act.h"

//------------------------------------------------------------------------
// Loads and stores convert to the compute type (float for half/float, double for double).

template <class T> struct Compute { typedef float type; };
template <> struct Compute<double> { typedef double type; };

__host__ __device__ __forceinline__ float  to_compute(float v)  { return v; }
__host__ __device__ __forceinline__ float  to_compute(__half v) { return __half2float(v); }
__host__ __device__ __forceinline__ double to_compute(double v) { return v; }
__host__ __device__ __forceinline__ void store(float* p, float v)   { *p = v; }
__host__ __device__ __forceinline__ void store(__half* p, float v)  { *p = __float2half_rn(v); }
__host__ __device__ __forceinline__ void store(double* p, double v) { *p = v; }

__host__ __device__ __forceinline__ float  exp_of(float v)  { return expf(v); }
__host__ __device__ __forceinline__ double exp_of(double v) { return exp(v); }
__host__ __device__ __forceinline__ float  tanh_of(float v) { return tanhf(v); }
__host__ __device__ __forceinline__ double tanh_of(double v){ return tanh(v); }
__host__ __device__ __forceinline__ float  log1p_of(float v){ return log1pf(v); }
__host__ __device__ __forceinline__ double log1p_of(double v){ return log1p(v); }

//------------------------------------------------------------------------
// The activation (d = 0), its first (d = 1) or second (d = 2) derivative at z.

template <class C>
__host__ __device__ C activation(int act, int d, C z, C alpha)
{
    const C one = 1, zero = 0;
    switch (act)
    {
    case BIAS_ACT_LINEAR:
        return d == 0 ? z : (d == 1 ? one : zero);
    case BIAS_ACT_RELU:
        return d == 0 ? (z > zero ? z : zero) : (d == 1 ? (z > zero ? one : zero) : zero);
    case BIAS_ACT_LRELU:
        return d == 0 ? (z > zero ? z : alpha * z) : (d == 1 ? (z > zero ? one : alpha) : zero);
    case BIAS_ACT_TANH: {
        C t = tanh_of(z);
        return d == 0 ? t : (d == 1 ? one - t * t : C(-2) * t * (one - t * t));
    }
    case BIAS_ACT_SIGMOID: {
        C s = one / (one + exp_of(-z));
        return d == 0 ? s : (d == 1 ? s * (one - s) : s * (one - s) * (one - C(2) * s));
    }
    case BIAS_ACT_ELU: {
        if (z > zero)
            return d == 0 ? z : (d == 1 ? one : zero);
        C e = exp_of(z);
        return d == 0 ? e - one : e;
    }
    case BIAS_ACT_SELU: {
        const C scale = C(1.0507009873554804934193349852946);
        const C coef = C(1.6732632423543772848170429916717);
        if (z > zero)
            return d == 0 ? scale * z : (d == 1 ? scale : zero);
        C e = exp_of(z);
        return d == 0 ? scale * coef * (e - one) : scale * coef * e;
    }
    case BIAS_ACT_SOFTPLUS: {
        // Same threshold as torch.nn.functional.softplus: linear above 20.
        if (z > C(20))
            return d == 0 ? z : (d == 1 ? one : zero);
        C s = one / (one + exp_of(-z));
        return d == 0 ? log1p_of(exp_of(z)) : (d == 1 ? s : s * (one - s));
    }
    case BIAS_ACT_SWISH: {
        C s = one / (one + exp_of(-z));
        if (d == 0)
            return z * s;
        if (d == 1)
            return s * (one + z * (one - s));
        return s * (one - s) * (C(2) + z * (one - C(2) * s));
    }
    }
    return zero;
}

// The slope of linear, relu or lrelu (alpha >= 0) at z, read from its output y = act(z) * gain:
// y / gain > 0 exactly where z > 0. This lets the backward keep y (which the next layer keeps
// anyway) instead of x, as stylegan2-ada-pytorch does.
template <class C>
__host__ __device__ C slope_from_output(int act, C y, C alpha, C gain)
{
    const bool positive = gain > C(0) ? y > C(0) : y < C(0);
    switch (act)
    {
    case BIAS_ACT_RELU:  return positive ? C(1) : C(0);
    case BIAS_ACT_LRELU: return positive ? C(1) : alpha;
    }
    return C(1);  // linear
}

//------------------------------------------------------------------------

// Element i of the output. Host-callable too, so the CPU tests can run the same arithmetic.
// I is the index type: 32-bit when the tensor allows, since 64-bit division costs as much as the
// memory traffic of this op.
template <class T, class I>
__host__ __device__ void bias_act_element(const BiasActArgs& a, I i)
{
    typedef typename Compute<T>::type C;
    const T* x = (const T*)a.x;
    const T* b = (const T*)a.b;
    const T* dy = (const T*)a.dy;
    T* out = (T*)a.out;
    const C alpha = (C)a.alpha, gain = (C)a.gain, clamp = (C)a.clamp;

    if (a.y)
    {
        // Order 1 from the output: an output at +-clamp may have been clamped, so only the open
        // interval passes (torch.clamp's gradient differs only where act(z) * gain is exactly +-clamp).
        const C y = to_compute(((const T*)a.y)[i]);
        C r = C(0);
        if (clamp < C(0) || (y > -clamp && y < clamp))
            r = to_compute(dy[i]) * gain * slope_from_output<C>(a.act, y, alpha, gain);
        store(&out[i], r);
        return;
    }
    C z = to_compute(x[i]);
    if (b)
        z += to_compute(b[(i / (I)a.bias_step) % (I)a.bias_size]);
    C h = activation<C>(a.act, 0, z, alpha) * gain;
    if (a.order == 0)
    {
        if (clamp >= C(0))
            h = h > clamp ? clamp : (h < -clamp ? -clamp : h);
        store(&out[i], h);
        return;
    }
    // Outside [-clamp, clamp] the output is constant, so every derivative is zero there
    // (the bounds count as inside, as in torch.clamp's gradient).
    C r = C(0);
    if (clamp < C(0) || (h >= -clamp && h <= clamp))
        r = to_compute(dy[i]) * gain * activation<C>(a.act, a.order, z, alpha);
    store(&out[i], r);
}

#ifndef SQUEEZEGAN_HOST_KERNELS
template <class T, class I>
__global__ void bias_act_kernel(BiasActArgs a)
{
    for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < (I)a.numel; i += (I)gridDim.x * blockDim.x)
        bias_act_element<T, I>(a, i);
}

template <class T>
static void launch_typed(const BiasActArgs& args, unsigned blocks, int threads, cudaStream_t stream)
{
    // The grid-stride loop may step past numel before it stops, so 32-bit indices need headroom.
    if (args.numel + (int64_t)blocks * threads < (int64_t)UINT32_MAX)
        bias_act_kernel<T, uint32_t><<<blocks, threads, 0, stream>>>(args);
    else
        bias_act_kernel<T, int64_t><<<blocks, threads, 0, stream>>>(args);
}

//------------------------------------------------------------------------

cudaError_t bias_act_launch(const BiasActArgs& args, cudaStream_t stream)
{
    if (args.numel == 0)
        return cudaSuccess;
    const int threads = 256;
    int64_t blocks = (args.numel + threads - 1) / threads;
    if (blocks > 65535L * 16)
        blocks = 65535L * 16;  // Grid-stride loop covers the rest.
    switch (args.dtype)
    {
    case BIAS_ACT_FLOAT32: launch_typed<float>(args, (unsigned)blocks, threads, stream); break;
    case BIAS_ACT_FLOAT16: launch_typed<__half>(args, (unsigned)blocks, threads, stream); break;
    case BIAS_ACT_FLOAT64: launch_typed<double>(args, (unsigned)blocks, threads, stream); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
#else
//------------------------------------------------------------------------
// Host build (ops_device.h): the same elements in order on the CPU, with the index type the GPU would use.

template <class T>
static void loop_typed(const BiasActArgs& args)
{
    if (args.numel < (int64_t)UINT32_MAX)
        for (uint32_t i = 0; i < (uint32_t)args.numel; i++) bias_act_element<T, uint32_t>(args, i);
    else
        for (int64_t i = 0; i < args.numel; i++) bias_act_element<T, int64_t>(args, i);
}

cudaError_t bias_act_launch(const BiasActArgs& args, cudaStream_t)
{
    switch (args.dtype)
    {
    case BIAS_ACT_FLOAT32: loop_typed<float>(args); break;
    case BIAS_ACT_FLOAT16: loop_typed<__half>(args); break;
    case BIAS_ACT_FLOAT64: loop_typed<double>(args); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}
#endif
