/* Fused fake quantization of float32 CPU tensors: NNCF's formula in one pass.
 *
 * Each element goes through exactly the float32 operations, in the same order,
 * that the eager torch path (quantizers.py, BaseQuantizer._quantize_inference)
 * runs as separate passes, so the results are bit-identical:
 *
 *     t   = clamp(x, low, high)        NaN stays NaN, as in torch.clamp
 *     t   = t - low                    skipped when every low is 0 (x - 0 == x)
 *     t   = t * s
 *     t   = t - zero_point             skipped when every zero point is 0
 *     out = nearbyint(t) / s           round half to even, as torch.round
 *
 * Build flags (kernel.py): -ffp-contract=off (no fused multiply-add) and no
 * -ffast-math, so the compiler may vectorise but never change a rounding.  With
 * -fopenmp the loops run on the OpenMP runtime torch has already loaded, sharing
 * its threads; without it they run on the calling thread.
 *
 * The tensor is seen as [outer, channels, inner] with one grid entry per channel
 * (channels = 1 for a per-tensor grid).  out may be x itself.
 */
#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* One build runs on any x86-64; the loader picks the widest variant the CPU has. */
#define CLONES __attribute__((target_clones("avx2", "sse4.1", "default")))
#else
#define CLONES
#endif

enum { CHUNK = 1 << 14, PARALLEL_FROM = 1 << 15 };

CLONES static void run(const float *x, float *out, int64_t n, float low, float high, float s, float zp,
                       int subtract_low, int subtract_zp) {
    for (int64_t i = 0; i < n; ++i) {
        float v = x[i];
        float t = v < low ? low : (v > high ? high : v);
        if (subtract_low) t = t - low;
        t = t * s;
        if (subtract_zp) t = t - zp;
        out[i] = nearbyintf(t) / s;
    }
}

int nxe_fake_quantize_f32(const float *x, float *out, int64_t outer, int64_t channels, int64_t inner,
                          const float *low, const float *high, const float *s, const float *zp, int subtract_low,
                          int subtract_zp, int threads) {
    int64_t total = outer * channels * inner;
    int parallel = threads > 1 && total >= PARALLEL_FROM;
    (void)parallel; /* unused without -fopenmp */
    if (channels == 1) {
        int64_t pieces = (total + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
        for (int64_t p = 0; p < pieces; ++p) {
            int64_t begin = p * CHUNK, end = begin + CHUNK < total ? begin + CHUNK : total;
            run(x + begin, out + begin, end - begin, low[0], high[0], s[0], zp[0], subtract_low, subtract_zp);
        }
        return 0;
    }
    int64_t rows = outer * channels;
#pragma omp parallel for num_threads(threads) schedule(static) if (parallel)
    for (int64_t row = 0; row < rows; ++row) {
        int64_t c = row % channels, offset = row * inner;
        run(x + offset, out + offset, inner, low[c], high[c], s[c], zp[c], subtract_low, subtract_zp);
    }
    return 0;
}
