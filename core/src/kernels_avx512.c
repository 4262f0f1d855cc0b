/* kernels_avx512.c - AVX-512 bodies of the softmax row, chosen at run time (kernels.c) on CPUs
 * with AVX-512F. The portable loop's reductions go through memory under `omp simd` and its exp
 * rebuilds 2^k by hand; here the max and the sum stay in registers (several accumulators, a
 * fixed order: reproducible) and vscalefps applies 2^k. Same polynomial as exp_scalar. */
#include "kernels.h"

#if AAC_HAVE_AVX512
#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f")))

AVX512 static inline __m512 exp16(__m512 x) {
    /* the portable exp's lower clamp: no subnormal results, and -inf gives e^-87.3, not NaN */
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3365447504f));
    const __m512 fk = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fk, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500E-4f), r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, fk); /* p * 2^fk, exact */
}

static inline __mmask16 first(int k) { return (__mmask16)(k >= 16 ? 0xffff : (1u << k) - 1); }

AVX512 float softmax_row_exp_avx512(float *row, int len, int n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    int j = 0;
    for (; j + 64 <= len; j += 64) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(row + j));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(row + j + 16));
        m2 = _mm512_max_ps(m2, _mm512_loadu_ps(row + j + 32));
        m3 = _mm512_max_ps(m3, _mm512_loadu_ps(row + j + 48));
    }
    for (; j < len; j += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, first(len - j), row + j));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (j = 0; j + 32 <= len; j += 32) {
        const __m512 e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), mx));
        const __m512 e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j + 16), mx));
        _mm512_storeu_ps(row + j, e0);
        _mm512_storeu_ps(row + j + 16, e1);
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; j < len; j += 16) {
        const __mmask16 k = first(len - j);
        const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), mx)));
        _mm512_mask_storeu_ps(row + j, k, e);
        s0 = _mm512_add_ps(s0, e);
    }
    for (j = len; j < n; j++) row[j] = 0.0f;
    return 1.0f / _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif
