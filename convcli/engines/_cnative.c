/*
 * convcli.engines._cnative: fused loops for the hot paths of the engines.
 *
 * Pure C on the buffer protocol (no numpy headers): the Python side
 * (convcli/engines/_native.py) checks dtypes, shapes and contiguity and
 * passes the dimensions; this module re-checks every buffer's length
 * against them before touching memory, then releases the GIL for the loop.
 *
 *   correlate(band, weights, out, C, F, kh, kw, R, Wo, sr, sc, dr, dc, depthwise)
 *       band (P, Wp, C), weights (F, kh, kw, C), out (R, Wo, N) C-contiguous,
 *       float32 or float64 (all three the same):
 *       depthwise: out[r, j, f*C + c] = sum_{m,n} band[sr*r + dr*m, sc*j + dc*n, c] * w[f, m, n, c]
 *       sum:       out[r, j, f]       = sum_{m,n,c} band[...] * w[f, m, n, c]
 *       P and Wp come from the band's length and its row width (P = len / (Wp*C)),
 *       passed as band_cols.
 *       op (optional, depthwise only): 0 magnitude, 1 max, 2 min, 3 sum of the F maps,
 *       out (R, Wo, C): out[r, j, c] = op_f out_depthwise[r, j, f*C + c], fused (the F
 *       filters' chunks stay in L1, only the reduced values are stored).
 *   channel_sum(src, out, n_pixels, C, weights_or_None)
 *       out[p] = sum_c src[p*C + c] (or sum_c w[c] * src[p*C + c] for c < len(w)),
 *       src uint8/uint16/float32/float64, out float32/float64, summed in out's dtype
 *       left to right (bit-identical to numpy's sum over a short axis).
 *   png_filter(rows, previous, out, n, row_bytes, bpp, with_paeth)
 *       PNG row filtering (convcli.png): each row's Sub / Up (/ Paeth) bytes, the one with
 *       the smallest sum of |byte as int8| (first on ties), after its type byte.
 *   reduce_maps(src, out, n_pixels, F, Ck, op)
 *       src (n_pixels, F, Ck), out (n_pixels, Ck); op 0 magnitude sqrt(sum x^2),
 *       1 max, 2 min, 3 sum (max/min propagate NaN as numpy does).
 *   display_map(src, out, abs, shift, has_shift, mul, has_mul, max_value)
 *       float32/float64 maps (any strides, at most 4-d) to uint8/uint16 pixels,
 *       round(clip(((|x| or x) + shift) * mul, 0, M)), bit-identical to the numpy
 *       steps of convcli.display.apply_mapping.
 *   band_stats(src, sample, first, step) -> (finite min, finite max, has_nan)
 *       and sample[i] = |src[first + i*step]| (NaN as 0), in one pass.
 *
 * The loops are vectorised over output columns: a chunk of CHUNK consecutive
 * (column, channel) values is kept in registers while every tap adds its
 * window (one load per tap and element, no store until the chunk is done).
 * A column stride s > 1 is first split into s contiguous phase planes, so
 * every tap reads a contiguous run. On x86-64 Linux with GCC the kernels are
 * compiled for x86-64-v3 (AVX2+FMA) and the baseline, chosen at load time
 * (target_clones): portable wheels that still use the machine's vectors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(CONVCLI_NO_CLONES)
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

typedef Py_ssize_t idx;
/* GCC/Clang vector extensions: 32-byte vectors (two SSE registers in the baseline clone) */
typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4), may_alias)); /* an unaligned load */
typedef double v4d __attribute__((vector_size(32)));
typedef int v8i_ __attribute__((vector_size(32)));
typedef long long v4l_ __attribute__((vector_size(32)));

/* out[k * ostride + f] = a[f][k] for f < 4, k < L: a 4 x L block of filter-major accumulators
 * stored pixel-major (the filters of one pixel are contiguous) with one 4-value store per
 * pixel instead of 4 scalar stores. */
static inline __attribute__((always_inline)) void store4_f32(float *out, Py_ssize_t ostride, const v8f *a)
{
    const v8f t0 = __builtin_shuffle(a[0], a[1], (v8i_){0, 8, 1, 9, 4, 12, 5, 13});
    const v8f t1 = __builtin_shuffle(a[0], a[1], (v8i_){2, 10, 3, 11, 6, 14, 7, 15});
    const v8f t2 = __builtin_shuffle(a[2], a[3], (v8i_){0, 8, 1, 9, 4, 12, 5, 13});
    const v8f t3 = __builtin_shuffle(a[2], a[3], (v8i_){2, 10, 3, 11, 6, 14, 7, 15});
    const v8f u[4] = {__builtin_shuffle(t0, t2, (v8i_){0, 1, 8, 9, 4, 5, 12, 13}),
                      __builtin_shuffle(t0, t2, (v8i_){2, 3, 10, 11, 6, 7, 14, 15}),
                      __builtin_shuffle(t1, t3, (v8i_){0, 1, 8, 9, 4, 5, 12, 13}),
                      __builtin_shuffle(t1, t3, (v8i_){2, 3, 10, 11, 6, 7, 14, 15})};
    for (int k = 0; k < 4; k++) { /* u[k]: pixel k in its low half, pixel k + 4 in its high half */
        memcpy(out + k * ostride, &u[k], 4 * sizeof(float));
        memcpy(out + (k + 4) * ostride, (const char *)&u[k] + 4 * sizeof(float), 4 * sizeof(float));
    }
}

static inline __attribute__((always_inline)) void store4_f64(double *out, Py_ssize_t ostride, const v4d *a)
{
    const v4d t0 = __builtin_shuffle(a[0], a[1], (v4l_){0, 4, 2, 6});
    const v4d t1 = __builtin_shuffle(a[0], a[1], (v4l_){1, 5, 3, 7});
    const v4d t2 = __builtin_shuffle(a[2], a[3], (v4l_){0, 4, 2, 6});
    const v4d t3 = __builtin_shuffle(a[2], a[3], (v4l_){1, 5, 3, 7});
    const v4d u[4] = {__builtin_shuffle(t0, t2, (v4l_){0, 1, 4, 5}), __builtin_shuffle(t1, t3, (v4l_){0, 1, 4, 5}),
                      __builtin_shuffle(t0, t2, (v4l_){2, 3, 6, 7}), __builtin_shuffle(t1, t3, (v4l_){2, 3, 6, 7})};
    for (int k = 0; k < 4; k++) memcpy(out + k * ostride, &u[k], 4 * sizeof(double));
}

/* ------------------------------------------------------------------------ */
/* correlation                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    idx C, F, kh, kw, R, Wo, sr, sc, dr, dc, P, Wp;
    idx ors; /* values between consecutive output rows (>= Wo * N) */
    int depthwise;
    int op; /* -1: every map; 0..3: the F depthwise maps reduced (magnitude, max, min, sum) */
} geometry;

/* o[k] = op over f of a[f*stride + k], k < len, f = 0 .. F-1 in order: magnitude
 * sqrt(sum x^2), max / min (NaN propagates, as numpy), sum: the arithmetic of reduce_maps */
#define REDUCE_CHUNK(T, NAME, SQRT)                                                                \
    static inline __attribute__((always_inline)) void NAME(T *restrict o, const T *restrict a, idx stride, idx F, idx len, int op) \
    {                                                                                              \
        switch (op) {                                                                              \
        case 0:                                                                                    \
            for (idx k = 0; k < len; k++) o[k] = a[k] * a[k];                                      \
            for (idx f = 1; f < F; f++) {                                                          \
                const T *restrict b = a + f * stride;                                              \
                for (idx k = 0; k < len; k++) o[k] += b[k] * b[k];                                 \
            }                                                                                      \
            for (idx k = 0; k < len; k++) o[k] = SQRT(o[k]);                                       \
            break;                                                                                 \
        case 1:                                                                                    \
        case 2: {                                                                                  \
            int any_nan = 0;                                                                       \
            for (idx k = 0; k < len; k++) {                                                        \
                o[k] = a[k];                                                                       \
                any_nan |= a[k] != a[k];                                                           \
            }                                                                                      \
            for (idx f = 1; f < F; f++) {                                                          \
                const T *restrict b = a + f * stride;                                              \
                if (op == 1)                                                                       \
                    for (idx k = 0; k < len; k++) o[k] = b[k] > o[k] ? b[k] : o[k];                \
                else                                                                               \
                    for (idx k = 0; k < len; k++) o[k] = b[k] < o[k] ? b[k] : o[k];                \
                for (idx k = 0; k < len; k++) any_nan |= b[k] != b[k];                             \
            }                                                                                      \
            if (any_nan) /* rare: redo the chunk's NaN positions */                                \
                for (idx k = 0; k < len; k++)                                                      \
                    for (idx f = 0; f < F; f++)                                                    \
                        if (a[f * stride + k] != a[f * stride + k]) { o[k] = (T)NAN; break; }      \
            break;                                                                                 \
        }                                                                                          \
        default:                                                                                   \
            for (idx k = 0; k < len; k++) o[k] = a[k];                                             \
            for (idx f = 1; f < F; f++) {                                                          \
                const T *restrict b = a + f * stride;                                              \
                for (idx k = 0; k < len; k++) o[k] += b[k];                                        \
            }                                                                                      \
        }                                                                                          \
    }
REDUCE_CHUNK(float, reduce_chunk_f32, sqrtf)
REDUCE_CHUNK(double, reduce_chunk_f64, sqrt)

#define CORR_KERNEL(T, V, NAME, RCHUNK)                                                                  \
    /* acc[0 .. len) = sum_t w_t * src_t[0 .. len), w_t a scalar (wt[t] == NULL) or a row;       \
     * a chunk of 4 vectors stays in registers over all taps */                                   \
    static inline __attribute__((always_inline)) void NAME##_chunks(T *restrict acc, idx len, int ntap, const T *const *src,      \
                                     const T *const *wt, const T *wv)                             \
    {                                                                                              \
        enum { L = (int)(sizeof(V) / sizeof(T)), NA = 8, CHUNK = NA * L };                        \
        int scalar = 1;                                                                            \
        for (int t = 0; t < ntap; t++) scalar &= wt[t] == NULL;                                    \
        idx x = 0;                                                                                 \
        /* NA independent accumulators: enough to hide the multiply-add latency (a chain of      \
         * ntap dependent FMAs per accumulator) behind the FMA throughput */                      \
        for (; x + CHUNK <= len; x += CHUNK) {                                                     \
            V a[NA];                                                                               \
            _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) a[i] = (V){0};                    \
            if (scalar) {                                                                          \
                for (int t = 0; t < ntap; t++) {                                                   \
                    const T *s = src[t] + x;                                                       \
                    const T w = wv[t];                                                             \
                    _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) {                         \
                        V si;                                                                      \
                        memcpy(&si, s + i * L, sizeof si);                                         \
                        a[i] += w * si;                                                            \
                    }                                                                              \
                }                                                                                  \
            } else {                                                                               \
                for (int t = 0; t < ntap; t++) {                                                   \
                    const T *s = src[t] + x;                                                       \
                    if (wt[t] == NULL) {                                                           \
                        const T w = wv[t];                                                         \
                        _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) {                     \
                            V si;                                                                  \
                            memcpy(&si, s + i * L, sizeof si);                                     \
                            a[i] += w * si;                                                        \
                        }                                                                          \
                    } else {                                                                       \
                        const T *w = wt[t] + x;                                                    \
                        _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) {                     \
                            V si, wi;                                                              \
                            memcpy(&si, s + i * L, sizeof si);                                     \
                            memcpy(&wi, w + i * L, sizeof wi);                                     \
                            a[i] += wi * si;                                                       \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            _Pragma("GCC unroll 8") for (int i = 0; i < NA; i++) memcpy(acc + x + i * L, &a[i], sizeof a[i]); \
        }                                                                                          \
        for (; x + L <= len; x += L) {                                                             \
            V a0 = {0};                                                                            \
            for (int t = 0; t < ntap; t++) {                                                       \
                V s0;                                                                              \
                memcpy(&s0, src[t] + x, sizeof s0);                                                \
                if (wt[t] == NULL) {                                                               \
                    a0 += wv[t] * s0;                                                              \
                } else {                                                                           \
                    V w0;                                                                          \
                    memcpy(&w0, wt[t] + x, sizeof w0);                                             \
                    a0 += w0 * s0;                                                                 \
                }                                                                                  \
            }                                                                                      \
            memcpy(acc + x, &a0, sizeof a0);                                                       \
        }                                                                                          \
        if (x < len) {                                                                             \
            idx rest = len - x;                                                                    \
            for (idx k = 0; k < rest; k++) acc[x + k] = 0;                                         \
            for (int t = 0; t < ntap; t++) {                                                       \
                const T *restrict s = src[t] + x;                                                  \
                if (wt[t] == NULL) {                                                               \
                    const T w = wv[t];                                                             \
                    for (idx k = 0; k < rest; k++) acc[x + k] += w * s[k];                         \
                } else {                                                                           \
                    const T *restrict w = wt[t] + x;                                               \
                    for (idx k = 0; k < rest; k++) acc[x + k] += w[k] * s[k];                      \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* rows[i]: padded row i (P rows of Wp columns, C values each; rows may repeat or alias) */   \
    CLONES static int NAME(const T *const *rows, const T *weights, T *out, const geometry *g)      \
    {                                                                                              \
        const idx C = g->C, F = g->F, kh = g->kh, kw = g->kw, R = g->R, Wo = g->Wo;                \
        const idx sr = g->sr, sc = g->sc, dr = g->dr, dc = g->dc, P = g->P, Wp = g->Wp;            \
        const idx X = Wo * C;                           /* values per output row and filter */     \
        const idx VB = C * ((1024 + C - 1) / C);        /* block: a multiple of C */               \
        const idx ntaps = kh * kw;                                                                 \
        /* phase planes: plane p holds columns p, p + sc, ... of every band row */                 \
        const idx pcols = (Wp + sc - 1) / sc;                                                      \
        const idx plane_row = pcols * C;                                                           \
        T *planes = NULL;                                                                          \
        idx plane_stride = 0;                                                                      \
        if (sc > 1) {                                                                              \
            planes = (T *)malloc(sizeof(T) * (size_t)(sc * P * plane_row + 1));                    \
            if (!planes) return -1;                                                                \
            for (idx p = 0; p < sc; p++) {                                                         \
                T *dst = planes + p * P * plane_row;                                               \
                for (idx r = 0; r < P; r++) {                                                      \
                    const T *srow = rows[r];                                                       \
                    T *drow = dst + r * plane_row;                                                 \
                    idx q = 0;                                                                     \
                    for (idx col = p; col < Wp; col += sc, q++)                                    \
                        memcpy(drow + q * C, srow + col * C, sizeof(T) * (size_t)C);               \
                    for (; q < pcols; q++) memset(drow + q * C, 0, sizeof(T) * (size_t)C);         \
                }                                                                                  \
            }                                                                                      \
            plane_stride = P * plane_row;                                                          \
        }                                                                                          \
        T *acc = (T *)malloc(sizeof(T) * (size_t)(F * VB));                                        \
        T *tiles = (T *)malloc(sizeof(T) * (size_t)(F * ntaps * VB + 1));                          \
        idx *tap_off = (idx *)malloc(sizeof(idx) * (size_t)(F * ntaps + 1));                       \
        idx *tap_row = (idx *)malloc(sizeof(idx) * (size_t)(F * ntaps + 1));                       \
        int *ntap = (int *)malloc(sizeof(int) * (size_t)(F + 1));                                  \
        const T **wt = (const T **)malloc(sizeof(T *) * (size_t)(F * ntaps + 1));                  \
        T *wv = (T *)malloc(sizeof(T) * (size_t)(F * ntaps + 1));                                  \
        const T **src = (const T **)malloc(sizeof(T *) * (size_t)(F * ntaps + 1));                 \
        if (!acc || !tiles || !tap_off || !tap_row || !ntap || !wt || !wv || !src) {               \
            free(planes); free(acc); free(tiles); free(tap_off); free(tap_row); free(ntap);        \
            free((void *)wt);                                                                      \
            free(wv); free((void *)src);                                                           \
            return -1;                                                                             \
        }                                                                                          \
        /* the non-zero taps of each filter: source offset, scalar or tiled row weight */         \
        for (idx f = 0; f < F; f++) {                                                              \
            int n_t = 0;                                                                           \
            for (idx m = 0; m < kh; m++) {                                                         \
                for (idx n = 0; n < kw; n++) {                                                     \
                    const T *w = weights + ((f * kh + m) * kw + n) * C;                            \
                    int any = 0, same = 1;                                                         \
                    for (idx c = 0; c < C; c++) {                                                  \
                        any |= w[c] != 0;                                                          \
                        same &= w[c] == w[0];                                                      \
                    }                                                                              \
                    if (!any) continue;                                                            \
                    const idx slot = f * ntaps + n_t;                                              \
                    const idx off = dc * n;                                                        \
                    tap_row[slot] = dr * m;                                                        \
                    tap_off[slot] = (off % sc) * plane_stride + (off / sc) * C;                    \
                    wv[slot] = w[0];                                                               \
                    if (same) {                                                                    \
                        wt[slot] = NULL;                                                           \
                    } else {                                                                       \
                        T *tile = tiles + slot * VB;                                               \
                        for (idx i = 0; i < VB; i++) tile[i] = w[i % C];                           \
                        wt[slot] = tile;                                                           \
                    }                                                                              \
                    n_t++;                                                                         \
                }                                                                                  \
            }                                                                                      \
            ntap[f] = n_t;                                                                         \
        }                                                                                          \
        /* reduced (op >= 0, depthwise): each filter's chunk into acc + f*VB, then one reduce */  \
        /* tap source: sc == 1, the padded row itself; else its row in the tap's phase plane */  \
        for (idx r = 0; g->op >= 0 && r < R; r++) {                                                \
            for (idx f = 0; f < F; f++)                                                            \
                for (idx t = f * ntaps; t < f * ntaps + ntap[f]; t++)                              \
                    src[t] = (sc > 1 ? planes + (sr * r + tap_row[t]) * plane_row                  \
                                     : rows[sr * r + tap_row[t]]) + tap_off[t];                    \
            for (idx x0 = 0; x0 < X; x0 += VB) {                                                   \
                const idx len = X - x0 < VB ? X - x0 : VB;                                         \
                for (idx f = 0; f < F; f++) {                                                      \
                    const int n_t = ntap[f];                                                       \
                    T *a = acc + f * VB;                                                           \
                    if (n_t == 0)                                                                  \
                        for (idx k = 0; k < len; k++) a[k] = 0;                                    \
                    else                                                                           \
                        NAME##_chunks(a, len, n_t, src + f * ntaps, wt + f * ntaps, wv + f * ntaps); \
                    for (int t = 0; t < n_t; t++) src[f * ntaps + t] += len;                       \
                }                                                                                  \
                RCHUNK(out + r * g->ors + x0, acc, VB, F, len, g->op);                             \
            }                                                                                      \
        }                                                                                          \
        for (idx r = 0; g->op < 0 && r < R; r++) {                                                 \
            T *orow = out + r * g->ors;                                                            \
            for (idx f = 0; f < F; f++) {                                                          \
                const int n_t = ntap[f];                                                           \
                for (int t = 0; t < n_t; t++) {                                                    \
                    const idx slot = f * ntaps + t;                                                \
                    src[t] = (sc > 1 ? planes + (sr * r + tap_row[slot]) * plane_row               \
                                     : rows[sr * r + tap_row[slot]]) + tap_off[slot];              \
                }                                                                                  \
                for (idx x0 = 0; x0 < X; x0 += VB) {                                               \
                    const idx len = X - x0 < VB ? X - x0 : VB;                                     \
                    const idx j0 = x0 / C, nj = len / C;                                           \
                    const int direct = g->depthwise && F == 1;                                     \
                    T *dst = direct ? orow + x0 : acc;                                             \
                    if (n_t == 0) {                                                                \
                        for (idx k = 0; k < len; k++) dst[k] = 0;                                  \
                    } else {                                                                       \
                        NAME##_chunks(dst, len, n_t, src, wt + f * ntaps, wv + f * ntaps);         \
                    }                                                                              \
                    for (int t = 0; t < n_t; t++) src[t] += len;                                   \
                    if (direct) continue;                                                          \
                    if (g->depthwise) {                                                            \
                        for (idx j = 0; j < nj; j++)                                               \
                            memcpy(orow + ((j0 + j) * F + f) * C, acc + j * C,                     \
                                   sizeof(T) * (size_t)C);                                         \
                    } else if (C == 1) {                                                           \
                        for (idx j = 0; j < nj; j++) orow[(j0 + j) * F + f] = acc[j];              \
                    } else {                                                                       \
                        for (idx j = 0; j < nj; j++) {                                             \
                            const T *a = acc + j * C;                                              \
                            T s = a[0];                                                            \
                            for (idx c = 1; c < C; c++) s += a[c];                                 \
                            orow[(j0 + j) * F + f] = s;                                            \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(planes); free(acc); free(tiles); free(tap_off); free(tap_row); free(ntap);            \
        free((void *)wt); free(wv); free((void *)src);                                             \
        return 0;                                                                                  \
    }

CORR_KERNEL(float, v8f, corr_f32, reduce_chunk_f32)
CORR_KERNEL(double, v4d, corr_f64, reduce_chunk_f64)


/* Planar path (several filters, or channels summed): the band is split into
 * planes per column phase and channel, pl[((p*C + c)*P + row)*pcols + q] =
 * band[row, p + q*sc, c]; a chunk of CW output columns of FB filters is kept
 * in registers while every (tap, channel) adds one contiguous window times a
 * broadcast weight: one load feeds FB multiply-adds. */

/* Pixel pairs of a 3-channel row split into the 6 planes of a stride-2 planar band:
 * e_c[q] = row[6q + c], o_c[q] = row[6q + 3 + c], q < n. Eight pairs (48 values) at a time:
 * each channel of 8 pixels is gathered by two blends and one permute (the classic RGB
 * deinterleave), then its even and odd pixels split. */
static inline __attribute__((always_inline)) void rgb_channel(const v8f *abc, int k, v8f *out)
{
    const v8f a = abc[0], b = abc[1], c = abc[2];
    /* lane j of channel k is in vector (2 (k - j)) mod 3 of a, b, c (8 = 2 mod 3) */
    static const int blend_ab[3][8] = {{0, 9, 2, 3, 12, 5, 6, 15}, {0, 1, 10, 3, 4, 13, 6, 7},
                                       {8, 1, 2, 11, 4, 5, 14, 7}};
    static const int blend_c[3][8] = {{0, 1, 10, 3, 4, 13, 6, 7}, {8, 1, 2, 11, 4, 5, 14, 7},
                                      {0, 9, 2, 3, 12, 5, 6, 15}};
    static const int order[3][8] = {{0, 3, 6, 1, 4, 7, 2, 5}, {1, 4, 7, 2, 5, 0, 3, 6},
                                    {2, 5, 0, 3, 6, 1, 4, 7}};
    v8i_ m1, m2, m3;
    for (int i = 0; i < 8; i++) { m1[i] = blend_ab[k][i]; m2[i] = blend_c[k][i]; m3[i] = order[k][i]; }
    *out = __builtin_shuffle(__builtin_shuffle(__builtin_shuffle(a, b, m1), c, m2), m3);
}

CLONES static void deint6_f32(const float *row, float *const *planes, Py_ssize_t n)
{
    Py_ssize_t q = 0;
    for (; q + 8 <= n; q += 8) {
        /* one 32-byte load per vector, straight into registers (a memcpy into an array was
         * done in 16-byte pieces through the stack, each 32-byte reload stalling on store
         * forwarding) */
        const v8fu *src = (const v8fu *)(row + 6 * q);
        const v8f v[6] = {src[0], src[1], src[2], src[3], src[4], src[5]};
        for (int k = 0; k < 3; k++) {
            v8f lo, hi;
            rgb_channel(v, k, &lo);
            rgb_channel(v + 3, k, &hi);
            const v8f even = __builtin_shuffle(lo, hi, (v8i_){0, 2, 4, 6, 8, 10, 12, 14});
            const v8f odd = __builtin_shuffle(lo, hi, (v8i_){1, 3, 5, 7, 9, 11, 13, 15});
            memcpy(planes[k] + q, &even, sizeof even);
            memcpy(planes[3 + k] + q, &odd, sizeof odd);
        }
    }
    for (; q < n; q++)
        for (int k = 0; k < 6; k++) planes[k][q] = row[6 * q + k];
}

#define PLANAR_KERNEL(T, V, NAME, FB, STORE4)                                                              \
    /* out[j*ostride + f*fstride] = sum_t wts[t*FB + f] * src[t][j], j < Wo, f < nf */             \
    static inline __attribute__((always_inline)) void NAME##_block(idx Wo, int nsrc, const T *const *src, const T *wts, int nf,   \
                                    T *out, idx ostride, idx fstride)                             \
    {                                                                                              \
        enum { L = (int)(sizeof(V) / sizeof(T)), CW = 3 * L };                                     \
        idx j = 0;                                                                                 \
        /* 3 column vectors x FB filters: 12 accumulators, and per source 3 loads and FB         \
         * broadcasts feed 12 multiply-adds */                                                    \
        for (; j + CW <= Wo; j += CW) {                                                            \
            V a0[FB], a1[FB], a2[FB];                                                              \
            for (int f = 0; f < FB; f++) a0[f] = a1[f] = a2[f] = (V){0};                           \
            for (int t = 0; t < nsrc; t++) {                                                       \
                V s0, s1, s2;                                                                      \
                memcpy(&s0, src[t] + j, sizeof s0);                                                \
                memcpy(&s1, src[t] + j + L, sizeof s1);                                            \
                memcpy(&s2, src[t] + j + 2 * L, sizeof s2);                                        \
                const T *w = wts + t * FB;                                                         \
                for (int f = 0; f < FB; f++) {                                                     \
                    const T wf = w[f];                                                             \
                    a0[f] += wf * s0;                                                              \
                    a1[f] += wf * s1;                                                              \
                    a2[f] += wf * s2;                                                              \
                }                                                                                  \
            }                                                                                      \
            if (FB == 4 && nf == 4 && fstride == 1) {                                              \
                STORE4(out + j * ostride, ostride, a0);                                            \
                STORE4(out + (j + L) * ostride, ostride, a1);                                      \
                STORE4(out + (j + 2 * L) * ostride, ostride, a2);                                  \
            } else {                                                                               \
                for (int f = 0; f < nf; f++)                                                       \
                    for (int k = 0; k < L; k++) {                                                  \
                        out[(j + k) * ostride + f * fstride] = a0[f][k];                           \
                        out[(j + L + k) * ostride + f * fstride] = a1[f][k];                       \
                        out[(j + 2 * L + k) * ostride + f * fstride] = a2[f][k];                   \
                    }                                                                              \
            }                                                                                      \
        }                                                                                          \
        for (; j + L <= Wo; j += L) {                                                              \
            V a0[FB];                                                                              \
            for (int f = 0; f < FB; f++) a0[f] = (V){0};                                           \
            for (int t = 0; t < nsrc; t++) {                                                       \
                V s0;                                                                              \
                memcpy(&s0, src[t] + j, sizeof s0);                                                \
                const T *w = wts + t * FB;                                                         \
                for (int f = 0; f < FB; f++) a0[f] += w[f] * s0;                                   \
            }                                                                                      \
            if (FB == 4 && nf == 4 && fstride == 1) {                                              \
                STORE4(out + j * ostride, ostride, a0);                                            \
            } else {                                                                               \
                for (int f = 0; f < nf; f++)                                                       \
                    for (int k = 0; k < L; k++) out[(j + k) * ostride + f * fstride] = a0[f][k];   \
            }                                                                                      \
        }                                                                                          \
        for (; j < Wo; j++) {                                                                      \
            T a[FB];                                                                               \
            for (int f = 0; f < FB; f++) a[f] = 0;                                                 \
            for (int t = 0; t < nsrc; t++) {                                                       \
                const T v = src[t][j];                                                             \
                for (int f = 0; f < FB; f++) a[f] += wts[t * FB + f] * v;                          \
            }                                                                                      \
            for (int f = 0; f < nf; f++) out[j * ostride + f * fstride] = a[f];                    \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    CLONES static int NAME(const T *const *rows, const T *weights, T *out, const geometry *g)      \
    {                                                                                              \
        const idx C = g->C, F = g->F, kh = g->kh, kw = g->kw, R = g->R, Wo = g->Wo;                \
        const idx sr = g->sr, sc = g->sc, dr = g->dr, dc = g->dc, P = g->P, Wp = g->Wp;            \
        const int dw = g->depthwise;                                                               \
        const idx N = dw ? F * C : F;                                                              \
        const idx pcols = (Wp + sc - 1) / sc;                                                      \
        const idx nsrc_max = kh * kw * (dw ? 1 : C);                                               \
        T *pl = (T *)malloc(sizeof(T) * (size_t)(sc * C * P * pcols + 1));                         \
        const idx groups = dw ? C : 1;                                                             \
        const idx nblocks = (F + FB - 1) / FB * groups;                                            \
        T *wts = (T *)malloc(sizeof(T) * (size_t)(nblocks * nsrc_max * FB + 1));                   \
        idx *off = (idx *)malloc(sizeof(idx) * (size_t)(nblocks * nsrc_max + 1));                  \
        int *nsrcs = (int *)malloc(sizeof(int) * (size_t)(nblocks + 1));                           \
        const T **src = (const T **)malloc(sizeof(T *) * (size_t)(nsrc_max + 1));                  \
        if (!pl || !wts || !off || !src || !nsrcs) {                                               \
            free(pl); free(wts); free(off); free((void *)src); free(nsrcs);                        \
            return -1;                                                                             \
        }                                                                                          \
        for (idx row = 0; row < P; row++) {                                                        \
            const T *srow = rows[row];                                                             \
            T *prow = pl + row * pcols;                                                            \
            const idx plane = P * pcols;                                                           \
            if (C == 3 && sc == 1) {                                                               \
                T *d0 = prow, *d1 = prow + plane, *d2 = prow + 2 * plane;                          \
                for (idx q = 0; q < Wp; q++) {                                                     \
                    d0[q] = srow[3 * q];                                                           \
                    d1[q] = srow[3 * q + 1];                                                       \
                    d2[q] = srow[3 * q + 2];                                                       \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            if (C == 3 && sc == 2) {                                                               \
                T *e0 = prow, *e1 = prow + plane, *e2 = prow + 2 * plane;                          \
                T *o0 = prow + 3 * plane, *o1 = prow + 4 * plane, *o2 = prow + 5 * plane;          \
                idx q = 0;                                                                         \
                if (sizeof(T) == sizeof(float)) {                                                  \
                    float *const pls[6] = {(float *)e0, (float *)e1, (float *)e2,                  \
                                           (float *)o0, (float *)o1, (float *)o2};                 \
                    q = Wp / 2;                                                                    \
                    deint6_f32((const float *)srow, pls, q);                                       \
                }                                                                                  \
                for (; 2 * q + 1 < Wp; q++) {                                                      \
                    const T *px = srow + 6 * q;                                                    \
                    e0[q] = px[0]; e1[q] = px[1]; e2[q] = px[2];                                   \
                    o0[q] = px[3]; o1[q] = px[4]; o2[q] = px[5];                                   \
                }                                                                                  \
                if (2 * q < Wp) {                                                                  \
                    e0[q] = srow[6 * q]; e1[q] = srow[6 * q + 1]; e2[q] = srow[6 * q + 2];         \
                    o0[q] = o1[q] = o2[q] = 0;                                                     \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            for (idx p = 0; p < sc; p++)                                                           \
                for (idx c = 0; c < C; c++) {                                                      \
                    T *d = prow + (p * C + c) * plane;                                             \
                    const T *from = srow + p * C + c;                                              \
                    const idx step = sc * C, count = (Wp - p + sc - 1) / sc;                       \
                    idx q = 0;                                                                     \
                    for (; q < count; q++) d[q] = from[q * step];                                  \
                    for (; q < pcols; q++) d[q] = 0;                                               \
                }                                                                                  \
        }                                                                                          \
        /* per block (filters f0 .. f0+FB-1, channel grp in depthwise mode): the non-zero       \
         * (tap, channel) sources, their offsets and FB weights each                            \
         * (depthwise: the taps of one channel; sum: every (tap, channel)) */                   \
        for (idx b = 0; b < nblocks; b++) {                                                        \
            const idx f0 = (b / groups) * FB, grp = b % groups;                                    \
            const int nf = (int)(F - f0 < FB ? F - f0 : FB);                                       \
            T *bw = wts + b * nsrc_max * FB;                                                       \
            idx *boff = off + b * nsrc_max;                                                        \
            int nsrc = 0;                                                                          \
            for (idx m = 0; m < kh; m++)                                                           \
                for (idx n = 0; n < kw; n++) {                                                     \
                    const idx o = dc * n;                                                          \
                    for (idx c = dw ? grp : 0; c < (dw ? grp + 1 : C); c++) {                      \
                        int any = 0;                                                               \
                        T *w = bw + nsrc * FB;                                                     \
                        for (int f = 0; f < FB; f++) {                                             \
                            w[f] = f < nf ? weights[(((f0 + f) * kh + m) * kw + n) * C + c] : 0;   \
                            any |= w[f] != 0;                                                      \
                        }                                                                          \
                        if (!any) continue;                                                        \
                        boff[nsrc] = (((o % sc) * C + c) * P + dr * m) * pcols + o / sc;           \
                        nsrc++;                                                                    \
                    }                                                                              \
                }                                                                                  \
            nsrcs[b] = nsrc;                                                                       \
        }                                                                                          \
        /* rows outer: a row's sources stay in cache across the filter blocks */                  \
        for (idx r = 0; r < R; r++) {                                                              \
            for (idx b = 0; b < nblocks; b++) {                                                    \
                const idx f0 = (b / groups) * FB, grp = b % groups;                                \
                const int nf = (int)(F - f0 < FB ? F - f0 : FB);                                   \
                const int nsrc = nsrcs[b];                                                         \
                const idx ooff = dw ? f0 * C + grp : f0;                                           \
                const idx fstride = dw ? C : 1;                                                    \
                for (int t = 0; t < nsrc; t++) src[t] = pl + off[b * nsrc_max + t] + sr * r * pcols; \
                NAME##_block(Wo, nsrc, src, wts + b * nsrc_max * FB, nf, out + r * g->ors + ooff, N, \
                             fstride);                                                             \
            }                                                                                      \
        }                                                                                          \
        free(pl); free(wts); free(off); free((void *)src); free(nsrcs);                            \
        return 0;                                                                                  \
    }

PLANAR_KERNEL(float, v8f, planar_f32, 4, store4_f32)
PLANAR_KERNEL(double, v4d, planar_f64, 4, store4_f64)

/* Unpadded sources. The padded image is described, not built:
 *     pad[i, q, c] = fill                               if rmap[i] < 0 or cmap[q] < 0
 *                  = image[rmap[i], cmap[q], c]         otherwise,
 * with cmap[q] == q - left for the image's own columns (checked by the binding). Output
 * columns whose window lies inside the image columns read the image rows in place (one
 * row pointer per padded row: row borders cost nothing); only the few border columns are
 * gathered into a small padded strip. */
typedef struct {
    idx H, W, left, nr, nc; /* image rows and columns, left pad, lengths of rmap and cmap */
    const idx *rmap, *cmap;
    double fill;
    /* the finiteness check: the image rows rmap[i], chk_lo <= i < chk_hi, are verified as they
     * are first read (while they are in cache); any NaN or +-inf sets nonfinite */
    idx chk_lo, chk_hi, chk_done;
    int nonfinite;
} padsrc;

/* 1 when every one of the n values at p is finite: x - x is 0 for a finite x and NaN for
 * NaN or +-inf, and a NaN stays in its sum (compiled without -ffast-math) */
#define ROW_FINITE(T, V, NAME)                                                                     \
    static inline __attribute__((always_inline)) int NAME(const T *p, idx n)                       \
    {                                                                                              \
        enum { L = (int)(sizeof(V) / sizeof(T)) };                                                 \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                                  \
        idx k = 0;                                                                                 \
        for (; k + 4 * L <= n; k += 4 * L) {                                                       \
            V x0, x1, x2, x3;                                                                      \
            memcpy(&x0, p + k, sizeof x0);                                                         \
            memcpy(&x1, p + k + L, sizeof x1);                                                     \
            memcpy(&x2, p + k + 2 * L, sizeof x2);                                                 \
            memcpy(&x3, p + k + 3 * L, sizeof x3);                                                 \
            a0 += x0 - x0; a1 += x1 - x1; a2 += x2 - x2; a3 += x3 - x3;                            \
        }                                                                                          \
        a0 += a1 + a2 + a3;                                                                        \
        T s = 0;                                                                                   \
        for (int l = 0; l < L; l++) s += a0[l];                                                    \
        for (; k < n; k++) s += p[k] - p[k];                                                       \
        return s == s;                                                                             \
    }
ROW_FINITE(float, v8f, row_finite_f32)
ROW_FINITE(double, v4d, row_finite_f64)

/* verify the image rows of band rows [chk_lo, hi) not verified yet (see padsrc): every row up to
 * hi, including rows no output reads (a row stride past the kernel leaves gaps between the rows
 * that chunks read), so the rows [chk_lo, chk_hi) are all tested once the last chunk is done */
#define CHECK_ROWS(T, FINITE, image, ps, hi)                                                       \
    do {                                                                                           \
        idx i_ = (ps)->chk_done > (ps)->chk_lo ? (ps)->chk_done : (ps)->chk_lo;                    \
        const idx e_ = (hi) < (ps)->chk_hi ? (hi) : (ps)->chk_hi;                                  \
        for (; i_ < e_; i_++)                                                                      \
            if ((ps)->rmap[i_] >= 0 &&                                                             \
                !FINITE((image) + (ps)->rmap[i_] * (ps)->W * C, (ps)->W * C))                     \
                (ps)->nonfinite = 1;                                                               \
        if (e_ > (ps)->chk_done) (ps)->chk_done = e_;                                              \
    } while (0)

#define CORR_DRIVER(T, NAME, CORR, PLANAR, FINITE)                                                 \
    /* fill strip[i, q, c] = pad[i0 + i, q0 + q, c], i < P, q < qw */                              \
    static void NAME##_strip(T *strip, const T *image, const padsrc *ps, idx C, idx i0, idx P,     \
                             idx q0, idx qw)                                                       \
    {                                                                                              \
        const T fill = (T)ps->fill;                                                                \
        for (idx i = 0; i < P; i++)                                                                \
            for (idx q = 0; q < qw; q++) {                                                         \
                T *d = strip + (i * qw + q) * C;                                                   \
                const idx sr_ = ps->rmap[i0 + i], scol = ps->cmap[q0 + q];                         \
                if (sr_ < 0 || scol < 0)                                                           \
                    for (idx c = 0; c < C; c++) d[c] = fill;                                       \
                else                                                                               \
                    memcpy(d, image + (sr_ * ps->W + scol) * C, sizeof(T) * (size_t)C);            \
            }                                                                                      \
    }                                                                                              \
                                                                                                   \
    /* output rows in chunks that read about 256 KiB of image rows each: a chunk's rows are       \
     * checked (when asked), then read by its interior columns and its two border strips while  \
     * they are still in cache */                                                                 \
    CLONES static int NAME(const T *image, padsrc *ps, const T *weights, T *out, const geometry *g0) \
    {                                                                                              \
        geometry g = *g0;                                                                          \
        const idx C = g.C, sc = g.sc, sr = g.sr, Wo = g.Wo, P = g.P, R = g0->R;                    \
        const idx keff = g.dc * (g.kw - 1) + 1, khe = g.dr * (g.kh - 1) + 1;                       \
        const idx N = g.op >= 0 ? C : g.depthwise ? g.F * C : g.F;                                 \
        const int interleaved = g.op >= 0 || (g.F == 1 && (g.depthwise || C == 1));               \
        int (*kern)(const T *const *, const T *, T *, const geometry *) = interleaved ? CORR : PLANAR; \
        idx RS = (idx)(((size_t)256 << 10) / sizeof(T)) / (sr * ps->W * C);                        \
        if (RS < 8) RS = 8;                                                                        \
        if (RS > R) RS = R;                                                                        \
        const idx PS = sr * (RS - 1) + khe; /* band rows of a chunk, at most */                    \
        /* output columns [jl, jr) read only image columns */                                     \
        idx jl = (ps->left + sc - 1) / sc, jr = 0;                                                 \
        if (jl > Wo) jl = Wo;                                                                      \
        if (ps->left + ps->W - keff >= 0) jr = (ps->left + ps->W - keff) / sc + 1;                 \
        if (jr > Wo) jr = Wo;                                                                      \
        if (jr < jl) jr = jl;                                                                      \
        const idx spans[2][2] = {{0, jl}, {jr, Wo}};                                               \
        idx qws[2];                                                                                \
        T *strips[2] = {NULL, NULL};                                                               \
        T *fillrow = NULL;                                                                         \
        const T **rows = (const T **)malloc(sizeof(T *) * (size_t)(P + 1));                        \
        const T **srows = (const T **)malloc(sizeof(T *) * (size_t)(PS + 1));                      \
        int status = rows && srows ? 0 : -1;                                                       \
        for (int s = 0; s < 2 && status == 0; s++) {                                               \
            const idx j0 = spans[s][0], j1 = spans[s][1];                                          \
            qws[s] = j1 > j0 ? sc * (j1 - j0 - 1) + keff : 0;                                      \
            if (j1 > j0 && !(strips[s] = (T *)malloc(sizeof(T) * (size_t)(PS * qws[s] * C + 1))))  \
                status = -1;                                                                       \
        }                                                                                          \
        const idx q0 = sc * jl;                                                                    \
        for (idx i = 0; i < P && status == 0; i++) {                                               \
            if (ps->rmap[i] < 0 && !fillrow) {                                                     \
                fillrow = (T *)malloc(sizeof(T) * (size_t)(ps->nc * C + 1));                       \
                if (!fillrow) { status = -1; break; }                                              \
                for (idx k = 0; k < ps->nc * C; k++) fillrow[k] = (T)ps->fill;                     \
            }                                                                                      \
            rows[i] = ps->rmap[i] < 0 ? fillrow + q0 * C                                           \
                                      : image + (ps->rmap[i] * ps->W + q0 - ps->left) * C;         \
        }                                                                                          \
        for (idx r0 = 0; r0 < R && status == 0; r0 += RS) {                                        \
            const idx nrow = R - r0 < RS ? R - r0 : RS;                                            \
            const idx a = sr * r0, b = sr * (r0 + nrow - 1) + khe;                                 \
            CHECK_ROWS(T, FINITE, image, ps, b);                                                   \
            g.R = nrow;                                                                            \
            g.P = b - a;                                                                           \
            T *orow = out + r0 * g.ors;                                                            \
            if (jr > jl) {                                                                         \
                g.Wo = jr - jl;                                                                    \
                g.Wp = sc * (g.Wo - 1) + keff;                                                     \
                status = kern(rows + a, weights, orow + jl * N, &g);                               \
            }                                                                                      \
            for (int s = 0; s < 2 && status == 0; s++) {                                           \
                const idx j0 = spans[s][0], j1 = spans[s][1];                                      \
                if (j1 <= j0) continue;                                                            \
                NAME##_strip(strips[s], image, ps, C, a, b - a, sc * j0, qws[s]);                  \
                for (idx i = 0; i < b - a; i++) srows[i] = strips[s] + i * qws[s] * C;             \
                g.Wo = j1 - j0;                                                                    \
                g.Wp = qws[s];                                                                     \
                status = kern(srows, weights, orow + j0 * N, &g);                                  \
            }                                                                                      \
        }                                                                                          \
        if (status == 0) CHECK_ROWS(T, FINITE, image, ps, ps->chk_hi); /* rows past the last read */ \
        free(fillrow); free(strips[0]); free(strips[1]);                                           \
        free((void *)rows); free((void *)srows);                                                   \
        return status;                                                                             \
    }

CORR_DRIVER(float, corr_image_f32, corr_f32, planar_f32, row_finite_f32)
CORR_DRIVER(double, corr_image_f64, corr_f64, planar_f64, row_finite_f64)

/* Separable depthwise correlation of one filter given as K rank-1 components, row by row:
 *     vert_k[q, c] = sum_m u[k, m, c] * pad[sr*r + dr*m, q, c]        (the image columns, in place)
 *     out[r, j, c] = sum_k sum_n v[k, n, c] * vert_k[j + dc*n, c]      (column stride 1)
 * The padded columns of vert_k are copied from its image columns by cmap (a column border
 * commutes with the vertical pass), or are fill * sum_m u[k, m, c] for a constant border.
 * One output row's intermediate (a padded row) stays in L1/L2 between the two passes. */
/* The vertical pass of RG output rows at once, for a component whose kh taps (stride 1,
 * dilation 1) are all non-zero and the same on every channel:
 *     out_rr[x] = sum_m u[m] * in[rr + m][x]      (m ascending: the arithmetic of CHUNKS)
 * Each input row of the group is loaded once per vector and feeds the RG accumulators it
 * reaches, instead of once per (output row, tap): (RG + kh - 1) / RG loads per output
 * vector instead of kh. */
#define SEP_VGROUP(T, V, NAME, RG)                                                                 \
    /* ub: kh + 2 (RG - 1) vectors, ub[RG - 1 + m] = u[m] and zeros around (a product with 0    \
     * adds +-0, which leaves every accumulator unchanged: none is ever -0, as each starts at   \
     * +0); in: kh + RG - 1 readable rows (rows past the group's are any readable row) */      \
    static inline __attribute__((always_inline)) void NAME(T *out, idx ostride, const T *const *in, \
                                                           const V *ub, const T *u, idx kh, idx nr, \
                                                           idx x0, idx x1)                         \
    {                                                                                              \
        enum { L = (int)(sizeof(V) / sizeof(T)) };                                                 \
        const idx ni = kh + RG - 1;                                                                \
        idx x = x0;                                                                                \
        for (; x + L <= x1; x += L) {                                                              \
            V a[RG];                                                                               \
            _Pragma("GCC unroll 8") for (int rr = 0; rr < RG; rr++) a[rr] = (V){0};                \
            for (idx i = 0; i < ni; i++) {                                                         \
                V s;                                                                               \
                memcpy(&s, in[i] + x, sizeof s);                                                   \
                const V *w = ub + i + RG - 1;                                                      \
                _Pragma("GCC unroll 8") for (int rr = 0; rr < RG; rr++) a[rr] += w[-rr] * s;       \
            }                                                                                      \
            _Pragma("GCC unroll 8") for (int rr = 0; rr < RG; rr++)                                \
                if (rr < nr) memcpy(out + rr * ostride + x, &a[rr], sizeof a[rr]);                 \
        }                                                                                          \
        for (; x < x1; x++)                                                                        \
            for (idx rr = 0; rr < nr; rr++) {                                                      \
                T acc = 0;                                                                         \
                for (idx m = 0; m < kh; m++) acc += u[m] * in[rr + m][x];                          \
                out[rr * ostride + x] = acc;                                                       \
            }                                                                                      \
    }
SEP_VGROUP(float, v8f, sep_vgroup_f32, 8)
SEP_VGROUP(double, v4d, sep_vgroup_f64, 8)
SEP_VGROUP(float, v8f, sep_vgroup4_f32, 4)
SEP_VGROUP(double, v4d, sep_vgroup4_f64, 4)

#define SEP_KERNEL(T, V, NAME, CHUNKS, VGROUP, VGROUP4, FINITE)                                                                \
    CLONES static int NAME(const T *image, padsrc *ps, const T *u, const T *v, idx K,              \
                           T *out, const geometry *g)                                              \
    {                                                                                              \
        const idx C = g->C, kh = g->kh, kw = g->kw, R = g->R, Wo = g->Wo;                          \
        const idx sr = g->sr, dr = g->dr, dc = g->dc, W = ps->W, Wp = ps->nc, left = ps->left;     \
        const idx X = Wo * C, XI = W * C;                                                          \
        const idx VB = C * ((1024 + C - 1) / C);                                                   \
        const idx nt = kh > kw ? kh : kw;                                                          \
        enum { RG = 8 };                                                                           \
        T *vrow = (T *)malloc(sizeof(T) * (size_t)(K * RG * Wp * C + 1));                          \
        T *part = (T *)malloc(sizeof(T) * (size_t)(X + 1));                                        \
        T *fillrow = (T *)malloc(sizeof(T) * (size_t)(XI + 1));                                    \
        T *tiles = (T *)malloc(sizeof(T) * (size_t)(2 * K * nt * VB + 1));                         \
        T *wv = (T *)malloc(sizeof(T) * (size_t)(2 * K * nt + 1));                                 \
        T *fsum = (T *)malloc(sizeof(T) * (size_t)(K * C + 1));                                    \
        const T **wt = (const T **)malloc(sizeof(T *) * (size_t)(2 * K * nt + 1));                 \
        const T **src = (const T **)malloc(sizeof(T *) * (size_t)(nt + RG + 1));                   \
        V *ub = (V *)aligned_alloc(sizeof(V), sizeof(V) * (size_t)(kh + 2 * RG));                  \
        T *uu = (T *)malloc(sizeof(T) * (size_t)(kh + 1));                                         \
        idx *toff = (idx *)malloc(sizeof(idx) * (size_t)(2 * K * nt + 1));                         \
        int *ntap = (int *)malloc(sizeof(int) * (size_t)(2 * K + 1));                              \
        /* the vertical pass reads kh + RG - 1 rows at once: rows of an image whose pitch is a      \
         * multiple of 1 KiB (3840 RGB float32 pixels: 45 KiB) fall into a few L1 sets and evict   \
         * each other (measured: 5.4 ns a pixel for 15 taps at 3840 columns, 3.7 at 3850), so     \
         * the fast path copies each input row once into a ring of rows whose pitch is an odd     \
         * number of cache lines */                                                               \
        const idx NR = nt + RG - 1;                                                                \
        const idx XIp = ((((idx)sizeof(T) * XI + 63) / 64) | 1) * 64 / (idx)sizeof(T);            \
        /* only where it pays: a pitch that is a multiple of 512 bytes (8 or fewer L1 sets for    \
         * consecutive rows), or a tall kernel (31 taps: 9.6 -> 6.4 ns a pixel even at 3776       \
         * columns); a 20000-pixel RGB row would cost 5 MB of ring per thread for nothing */      \
        const int use_ring = kh > 20 || ((idx)sizeof(T) * XI) % 512 == 0;                          \
        T *ring = (T *)malloc(sizeof(T) * (size_t)(use_ring ? NR * XIp + 1 : 1));                  \
        idx ring_next = 0; /* band rows < ring_next are in the ring (the last NR of them) */       \
        if (!vrow || !part || !fillrow || !tiles || !wv || !fsum || !wt || !src || !toff || !ntap  \
            || !ub || !uu || !ring) {                                                              \
            free(vrow); free(part); free(fillrow); free(tiles); free(wv); free(fsum);              \
            free(ub); free(uu); free(ring);                                                        \
            free((void *)wt); free((void *)src); free(toff); free(ntap);                           \
            return -1;                                                                             \
        }                                                                                          \
        const T fill = (T)ps->fill;                                                                \
        for (idx k = 0; k < XI; k++) fillrow[k] = fill;                                            \
        /* pass p (0 vertical, 1 horizontal) of component k: its non-zero taps */                 \
        for (idx k = 0; k < K; k++)                                                                \
            for (int p = 0; p < 2; p++) {                                                          \
                const idx len = p ? kw : kh, base = (2 * k + p) * nt;                              \
                const T *w0 = (p ? v : u) + k * len * C;                                           \
                int n_t = 0;                                                                       \
                for (idx m = 0; m < len; m++) {                                                    \
                    const T *w = w0 + m * C;                                                       \
                    int any = 0, same = 1;                                                         \
                    for (idx c = 0; c < C; c++) { any |= w[c] != 0; same &= w[c] == w[0]; }        \
                    if (!any) continue;                                                            \
                    const idx slot = base + n_t;                                                   \
                    toff[slot] = p ? dc * m * C : dr * m;                                          \
                    wv[slot] = w[0];                                                               \
                    if (same) wt[slot] = NULL;                                                     \
                    else {                                                                         \
                        T *tile = tiles + slot * VB;                                               \
                        for (idx i = 0; i < VB; i++) tile[i] = w[i % C];                           \
                        wt[slot] = tile;                                                           \
                    }                                                                              \
                    n_t++;                                                                         \
                }                                                                                  \
                ntap[2 * k + p] = n_t;                                                             \
                if (!p)                                                                            \
                    for (idx c = 0; c < C; c++) {                                                  \
                        T s = 0;                                                                   \
                        for (idx m = 0; m < len; m++) s += w0[m * C + c] * fill;                   \
                        fsum[k * C + c] = s;                                                       \
                    }                                                                              \
            }                                                                                      \
        /* RG output rows at a time: the vertical pass by column blocks (its kh + RG - 1 input     \
         * rows of a block stay in L1/L2), then each row's horizontal pass from the group buffer */\
        for (idx r0 = 0; r0 < R; r0 += RG) {                                                       \
            const idx nr = R - r0 < RG ? R - r0 : RG;                                              \
            CHECK_ROWS(T, FINITE, image, ps, sr * (r0 + nr - 1) + dr * (kh - 1) + 1);              \
            for (idx k = 0; k < K; k++) {                                                          \
                const idx bu = 2 * k * nt;                                                         \
                const int nu = ntap[2 * k];                                                        \
                int fast = sr == 1 && dr == 1 && nu == kh && kh <= nt;                             \
                for (int t = 0; fast && t < nu; t++) fast = wt[bu + t] == NULL;                    \
                if (fast) {                                                                        \
                    for (idx i = 0; i < kh + RG - 1; i++) {                                        \
                        const idx pi = r0 + i;                                                     \
                        if (i >= nr + kh - 1 || ps->rmap[pi] < 0) {                                \
                            src[i] = fillrow;                                                      \
                            continue;                                                              \
                        }                                                                          \
                        if (!use_ring) {                                                           \
                            src[i] = image + ps->rmap[pi] * XI;                                    \
                            continue;                                                              \
                        }                                                                          \
                        T *slot = ring + (pi % NR) * XIp;                                          \
                        if (pi >= ring_next) {                                                     \
                            memcpy(slot, image + ps->rmap[pi] * XI, sizeof(T) * (size_t)XI);       \
                            ring_next = pi + 1;                                                    \
                        }                                                                          \
                        src[i] = slot;                                                             \
                    }                                                                              \
                    for (idx m = 0; m < kh + 2 * (RG - 1); m++) ub[m] = (V){0};                    \
                    for (idx m = 0; m < kh; m++) {                                                 \
                        ub[RG - 1 + m] = (V){0} + wv[bu + m];                                      \
                        uu[m] = wv[bu + m];                                                        \
                    }                                                                              \
                    if (kh <= 20) { /* short kernels: two groups of 4 rows (fewer wasted products) */  \
                        for (idx h = 0; h < nr; h += 4)                                            \
                            VGROUP4(vrow + (k * RG + h) * Wp * C + left * C, Wp * C, src + h,      \
                                    ub + 4, uu, kh, nr - h < 4 ? nr - h : 4, 0, XI);               \
                    } else {                                                                       \
                        VGROUP(vrow + k * RG * Wp * C + left * C, Wp * C, src, ub, uu, kh, nr, 0, XI); \
                    }                                                                              \
                }                                                                                  \
                for (idx x0 = 0; !fast && x0 < XI; x0 += VB) {                                     \
                    const idx len = XI - x0 < VB ? XI - x0 : VB;                                   \
                    for (idx rr = 0; rr < nr; rr++) {                                              \
                        T *vi = vrow + (k * RG + rr) * Wp * C + left * C + x0;                     \
                        if (nu == 0) {                                                             \
                            for (idx i = 0; i < len; i++) vi[i] = 0;                               \
                            continue;                                                              \
                        }                                                                          \
                        for (int t = 0; t < nu; t++) {                                             \
                            const idx i = sr * (r0 + rr) + toff[bu + t];                           \
                            src[t] = (ps->rmap[i] < 0 ? fillrow : image + ps->rmap[i] * XI) + x0;  \
                        }                                                                          \
                        CHUNKS(vi, len, nu, src, wt + bu, wv + bu);                                \
                    }                                                                              \
                }                                                                                  \
                for (idx rr = 0; rr < nr; rr++) {                                                  \
                    T *vr = vrow + (k * RG + rr) * Wp * C, *vi = vr + left * C;                    \
                    for (idx q = 0; q < Wp; q++) {                                                 \
                        if (q == left) q = left + W;                                               \
                        if (q >= Wp) break;                                                        \
                        T *d = vr + q * C;                                                         \
                        if (ps->cmap[q] < 0)                                                       \
                            for (idx c = 0; c < C; c++) d[c] = fsum[k * C + c];                    \
                        else                                                                       \
                            memcpy(d, vi + ps->cmap[q] * C, sizeof(T) * (size_t)C);                \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            for (idx rr = 0; rr < nr; rr++) {                                                      \
                T *orow = out + (r0 + rr) * g->ors;                                                \
                for (idx k = 0; k < K; k++) {                                                      \
                    const idx bv = (2 * k + 1) * nt;                                               \
                    const int nv = ntap[2 * k + 1];                                                \
                    T *dst = k == 0 ? orow : part;                                                 \
                    for (int t = 0; t < nv; t++) src[t] = vrow + (k * RG + rr) * Wp * C + toff[bv + t];\
                    for (idx x0 = 0; x0 < X; x0 += VB) {                                           \
                        const idx len = X - x0 < VB ? X - x0 : VB;                                 \
                        if (nv == 0)                                                               \
                            for (idx i = 0; i < len; i++) dst[x0 + i] = 0;                         \
                        else                                                                       \
                            CHUNKS(dst + x0, len, nv, src, wt + bv, wv + bv);                      \
                        for (int t = 0; t < nv; t++) src[t] += len;                                \
                    }                                                                              \
                    if (k)                                                                         \
                        for (idx i = 0; i < X; i++) orow[i] += part[i];                            \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        CHECK_ROWS(T, FINITE, image, ps, ps->chk_hi); /* rows past the last one read */            \
        free(vrow); free(part); free(fillrow); free(tiles); free(wv); free(fsum);                  \
        free(ub); free(uu); free(ring);                                                            \
        free((void *)wt); free((void *)src); free(toff); free(ntap);                               \
        return 0;                                                                                  \
    }

SEP_KERNEL(float, v8f, sep_image_f32, corr_f32_chunks, sep_vgroup_f32, sep_vgroup4_f32, row_finite_f32)
SEP_KERNEL(double, v4d, sep_image_f64, corr_f64_chunks, sep_vgroup_f64, sep_vgroup4_f64, row_finite_f64)

/* ------------------------------------------------------------------------ */
/* channel sums and map reductions                                            */
/* ------------------------------------------------------------------------ */

/* no fused multiply-add in the channel sums and reductions: each product rounded, as numpy
 * computes w0*x0 + w1*x1 + w2*x2 (the luminance of convcli.conv.luminance, bit for bit), and
 * the same sums of squares in the vector loops and the scalar tails of either clone (a map
 * computed whole or in bands of rows gives the same bits) */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#define CHANNEL_SUM(TI, TO, NAME)                                                                  \
    CLONES static void NAME(const TI *restrict src, TO *restrict out, idx n, idx C,                \
                            const double *weights, idx nw)                                         \
    {                                                                                              \
        if (weights == NULL) {                                                                     \
            if (C == 3) {                                                                          \
                for (idx p = 0; p < n; p++) {                                                      \
                    TO s = (TO)src[3 * p];                                                         \
                    s += (TO)src[3 * p + 1];                                                       \
                    s += (TO)src[3 * p + 2];                                                       \
                    out[p] = s;                                                                    \
                }                                                                                  \
                return;                                                                            \
            }                                                                                      \
            for (idx p = 0; p < n; p++) {                                                          \
                const TI *a = src + p * C;                                                         \
                TO s = (TO)a[0];                                                                   \
                for (idx c = 1; c < C; c++) s += (TO)a[c];                                         \
                out[p] = s;                                                                        \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        TO w[16];                                                                                  \
        for (idx c = 0; c < nw; c++) w[c] = (TO)weights[c];                                        \
        if (nw == 3) {                                                                             \
            const TO w0 = w[0], w1 = w[1], w2 = w[2];                                              \
            for (idx p = 0; p < n; p++) {                                                          \
                const TI *a = src + p * C;                                                         \
                TO s = w0 * (TO)a[0];                                                              \
                s += w1 * (TO)a[1];                                                                \
                s += w2 * (TO)a[2];                                                                \
                out[p] = s;                                                                        \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (idx p = 0; p < n; p++) {                                                              \
            const TI *a = src + p * C;                                                             \
            TO s = w[0] * (TO)a[0];                                                                \
            for (idx c = 1; c < nw; c++) s += w[c] * (TO)a[c];                                     \
            out[p] = s;                                                                            \
        }                                                                                          \
    }

CHANNEL_SUM(uint8_t, float, csum_u8_f32)
CHANNEL_SUM(uint16_t, float, csum_u16_f32)
CHANNEL_SUM(float, float, csum_f32_f32)
CHANNEL_SUM(double, float, csum_f64_f32)
CHANNEL_SUM(uint8_t, double, csum_u8_f64)
CHANNEL_SUM(uint16_t, double, csum_u16_f64)
CHANNEL_SUM(float, double, csum_f32_f64)
CHANNEL_SUM(double, double, csum_f64_f64)

/* one pixel's Ck outputs from its F x Ck inputs; KC > 0 is a compile-time Ck */
#define REDUCE_BODY(T, SQRT, KC)                                                                   \
    for (idx p = 0; p < n; p++) {                                                                  \
        const T *a = src + p * F * Ck;                                                             \
        T *o = out + p * Ck;                                                                       \
        T r[KC > 0 ? KC : 16];                                                                     \
        int bad[KC > 0 ? KC : 16];                                                                 \
        for (idx c0 = 0; c0 < Ck; c0 += (KC > 0 ? KC : 16)) {                                      \
            const idx nc = KC > 0 ? KC : (Ck - c0 < 16 ? Ck - c0 : 16);                            \
            for (idx c = 0; c < nc; c++) {                                                         \
                r[c] = op == 0 ? a[c0 + c] * a[c0 + c] : a[c0 + c];                                \
                bad[c] = a[c0 + c] != a[c0 + c];                                                   \
            }                                                                                      \
            for (idx f = 1; f < F; f++) {                                                          \
                const T *b = a + f * Ck + c0;                                                      \
                for (idx c = 0; c < nc; c++) {                                                     \
                    const T v = b[c];                                                              \
                    switch (op) {                                                                  \
                    case 0: r[c] += v * v; break;                                                  \
                    case 1: r[c] = v > r[c] ? v : r[c]; bad[c] |= v != v; break;                   \
                    case 2: r[c] = v < r[c] ? v : r[c]; bad[c] |= v != v; break;                   \
                    default: r[c] += v;                                                            \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            for (idx c = 0; c < nc; c++)                                                           \
                o[c0 + c] = op == 0 ? SQRT(r[c]) : (op == 1 || op == 2) && bad[c] ? (T)NAN : r[c]; \
        }                                                                                          \
    }

#define REDUCE_OP(T, NAME, SQRT, OP)                                                               \
    static void NAME##_op##OP(const T *restrict src, T *restrict out, idx n, idx F, idx Ck)        \
    {                                                                                              \
        const int op = OP;                                                                         \
        switch (Ck) {                                                                              \
        case 1: REDUCE_BODY(T, SQRT, 1) break;                                                     \
        case 2: REDUCE_BODY(T, SQRT, 2) break;                                                     \
        case 3: REDUCE_BODY(T, SQRT, 3) break;                                                     \
        case 4: REDUCE_BODY(T, SQRT, 4) break;                                                     \
        default: REDUCE_BODY(T, SQRT, 0)                                                           \
        }                                                                                          \
    }

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef int64_t v4l __attribute__((vector_size(32)));

/* lane-wise square roots of a 4-lane vector, in place (SSE sqrtps / sqrtpd on x86-64: no errno) */
#if defined(__x86_64__) && defined(__SSE2__)
static inline void sqrt4_f32(v4f *x)
{
    __m128 v;
    memcpy(&v, x, sizeof v);
    v = _mm_sqrt_ps(v);
    memcpy(x, &v, sizeof v);
}
static inline void sqrt4_f64(v4d *x)
{
    __m128d v[2];
    memcpy(v, x, sizeof v);
    v[0] = _mm_sqrt_pd(v[0]);
    v[1] = _mm_sqrt_pd(v[1]);
    memcpy(x, v, sizeof v);
}
#else
static inline void sqrt4_f32(v4f *x) { for (int k = 0; k < 4; k++) (*x)[k] = sqrtf((*x)[k]); }
static inline void sqrt4_f64(v4d *x) { for (int k = 0; k < 4; k++) (*x)[k] = sqrt((*x)[k]); }
#endif

/* Ck <= 4: one 4-lane vector per pixel and kernel (loads at a + f*Ck), reduced over f and stored
 * whole at out + p*Ck: the lanes past Ck are overwritten by the next pixel's store, so the
 * last pixels (whose loads or store would pass the buffers' ends) take the scalar loop. No
 * shuffles: the same code for every Ck <= 4, in both clones (2-3x the old per-pixel scalar
 * loop on a 12 MP 2x3 stack, which GCC left scalar). Same operations in the same order as the
 * scalar loop: max/min equal numpy's bit for bit, sum and magnitude within rounding; no FMA. */
#define VSELECT(V, IV, m, a, b) ((V)(((IV)(a) & (m)) | ((IV)(b) & ~(m))))

#define REDUCE_VEC_PIXELS(T, V, IV, KF, SQRT)                                                      \
    for (idx p = p0; p < p1; p++) {                                                                \
        const T *a = src + p * KF * Ck;                                                            \
        V r, v;                                                                                    \
        IV bad;                                                                                    \
        memcpy(&r, a, sizeof r);                                                                   \
        if (op == 0) r = r * r;                                                                    \
        bad = r != r;                                                                              \
        for (idx f = 1; f < KF; f++) {                                                             \
            memcpy(&v, a + f * Ck, sizeof v);                                                      \
            switch (op) {                                                                          \
            case 0: r += v * v; break;                                                             \
            case 1: r = VSELECT(V, IV, v > r, v, r); bad |= v != v; break;                         \
            case 2: r = VSELECT(V, IV, v < r, v, r); bad |= v != v; break;                         \
            default: r += v;                                                                       \
            }                                                                                      \
        }                                                                                          \
        if (op == 0) SQRT(&r);                                                                     \
        if (op == 1 || op == 2) r = VSELECT(V, IV, bad, nan4, r);                                  \
        memcpy(out + p * Ck, &r, sizeof r);                                                        \
    }

#define REDUCE_VEC(T, V, IV, NAME, SQRT)                                                           \
    static inline __attribute__((always_inline)) void NAME##_vec_op(                               \
        const T *restrict src, T *restrict out, idx p0, idx p1, idx F, idx Ck, const int op)       \
    {                                                                                              \
        const V nan4 = {(T)NAN, (T)NAN, (T)NAN, (T)NAN};                                           \
        (void)nan4;                                                                                \
        switch (F) {                                                                               \
        case 1: REDUCE_VEC_PIXELS(T, V, IV, 1, SQRT) break;                                        \
        case 2: REDUCE_VEC_PIXELS(T, V, IV, 2, SQRT) break;                                        \
        case 3: REDUCE_VEC_PIXELS(T, V, IV, 3, SQRT) break;                                        \
        case 4: REDUCE_VEC_PIXELS(T, V, IV, 4, SQRT) break;                                        \
        default: REDUCE_VEC_PIXELS(T, V, IV, F, SQRT)                                              \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* nv: the first pixels whose 4-lane loads and store stay inside the buffers */                \
    static inline idx NAME##_vec_pixels(idx n, idx F, idx Ck)                                      \
    {                                                                                              \
        if (Ck > 4 || n * F * Ck < (F - 1) * Ck + 4 || n * Ck < 4) return 0;                       \
        const idx by_src = (n * F * Ck - (F - 1) * Ck - 4) / (F * Ck) + 1;                         \
        const idx by_out = (n * Ck - 4) / Ck + 1;                                                  \
        return by_src < by_out ? by_src : by_out;                                                  \
    }                                                                                              \
                                                                                                   \
    static inline __attribute__((always_inline)) void NAME##_vec(const T *restrict src,            \
                                                                 T *restrict out, idx nv, idx F,   \
                                                                 idx Ck, int op)                   \
    {                                                                                              \
        for (idx p0 = 0; p0 < nv; p0 += 1024) {                                                    \
            const idx p1 = nv - p0 < 1024 ? nv : p0 + 1024;                                        \
            switch (op) {                                                                          \
            case 0: NAME##_vec_op(src, out, p0, p1, F, Ck, 0); break;                              \
            case 1: NAME##_vec_op(src, out, p0, p1, F, Ck, 1); break;                              \
            case 2: NAME##_vec_op(src, out, p0, p1, F, Ck, 2); break;                              \
            default: NAME##_vec_op(src, out, p0, p1, F, Ck, 3);                                    \
            }                                                                                      \
        }                                                                                          \
    }

#define REDUCE(T, V, IV, NAME, SQRT, SQRT_RUN)                                                     \
    REDUCE_OP(T, NAME, SQRT, 0)                                                                    \
    REDUCE_OP(T, NAME, SQRT, 1)                                                                    \
    REDUCE_OP(T, NAME, SQRT, 2)                                                                    \
    REDUCE_OP(T, NAME, SQRT, 3)                                                                    \
    REDUCE_VEC(T, V, IV, NAME, SQRT_RUN)                                                           \
    CLONES static void NAME(const T *restrict src, T *restrict out, idx n, idx F, idx Ck, int op)  \
    {                                                                                              \
        const idx nv = NAME##_vec_pixels(n, F, Ck);                                                \
        NAME##_vec(src, out, nv, F, Ck, op);                                                       \
        src += nv * F * Ck;                                                                        \
        out += nv * Ck;                                                                            \
        n -= nv;                                                                                   \
        switch (op) {                                                                              \
        case 0: NAME##_op0(src, out, n, F, Ck); break;                                             \
        case 1: NAME##_op1(src, out, n, F, Ck); break;                                             \
        case 2: NAME##_op2(src, out, n, F, Ck); break;                                             \
        default: NAME##_op3(src, out, n, F, Ck);                                                   \
        }                                                                                          \
    }

REDUCE(float, v4f, v4i, reduce_f32, sqrtf, sqrt4_f32)
REDUCE(double, v4d, v4l, reduce_f64, sqrt, sqrt4_f64)
#pragma GCC pop_options

/* Display mapping of float maps to 8/16-bit pixels, the numpy steps of
 * convcli.display.apply_mapping in the same dtype T:
 *     v = |x| (abs mode) or x;  v = v + shift (if shift != 0);  v = v * mul (if mul != 1);
 *     pixel = round-half-even(clip(v, 0, M)), NaN -> 0, +-inf saturate; mul == 0 gives 0.
 * numpy rounds first and clips after; clipping first to [0, M] (M an integer) gives the same
 * integer, and the rounding is then the exact (v + 1.5*2^p) - 1.5*2^p of a value < 2^16 (p the
 * mantissa width): no libm call, so the loop is vectorised. Any strides (element multiples). */
/* rows r0 .. r1-1 of NC values (element strides ss[2], ss[3]) into tmp, and otmp back */
#define DMAP_GATHER(NC)                                                                            \
    for (idx r = r0; r < r1; r++, k += NC) {                                                       \
        const __typeof__(s) sr = s + r * ss[2];                                                    \
        for (idx c = 0; c < NC; c++) tmp[k + c] = sr[c * ss[3]];                                   \
    }
#define DMAP_SCATTER(NC)                                                                           \
    for (idx r = r0; r < r1; r++, k += NC) {                                                       \
        const __typeof__(o) orow = o + r * os[2];                                                  \
        for (idx c = 0; c < NC; c++) orow[c * os[3]] = otmp[k + c];                                \
    }

#define DISPLAY_MAP(T, O, NAME, MAGIC)                                                             \
    static inline __attribute__((always_inline)) void NAME##_run(                                  \
        const T *restrict s, O *restrict o, idx n, idx ss, idx os, const int ab,                   \
        const int has_shift, const T sh, const int has_mul, const T mu, const T M)                 \
    {                                                                                              \
        for (idx k = 0; k < n; k++) {                                                              \
            T v = s[k * ss];                                                                       \
            if (ab) v = v < 0 ? -v : v; /* |x| (a -0 stays, and clips to 0) */                     \
            if (has_shift) v = v + sh;                                                             \
            if (has_mul) v = v * mu;                                                               \
            v = v > 0 ? v : 0; /* NaN -> 0 */                                                      \
            v = v < M ? v : M;                                                                     \
            v = (v + (T)MAGIC) - (T)MAGIC;                                                         \
            o[k * os] = (O)(int32_t)v;                                                             \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    CLONES static void NAME(const T *src, O *out, const idx *shape, const idx *ss, const idx *os,  \
                            int ab, int has_shift, double shift, int has_mul, double mul, int zero,\
                            double max_value)                                                      \
    {                                                                                              \
    /* mul == 0 (zero) maps everything to 0 through the product itself: x*0, inf*0 = NaN -> 0 */   \
    const T sh = (T)shift, mu = (T)mul, M = (T)max_value;                                          \
    (void)zero;                                                                                    \
        const idx n2 = shape[2], n3 = shape[3];                                                    \
        /* contiguous runs of 16 or more: straight through; else (a channel slice, a strided view) \
         * the last two axes in C order through contiguous scratch, 256 values at a time (one pass \
         * over memory, the loads and stores scalar, the mapping vectorised) */                    \
        const int direct = ss[3] == 1 && os[3] == 1 && n3 >= 16;                                   \
        T tmp[256];                                                                                \
        O otmp[256];                                                                               \
        for (idx i0 = 0; i0 < shape[0]; i0++)                                                      \
            for (idx i1 = 0; i1 < shape[1]; i1++) {                                                \
                const T *s = src + i0 * ss[0] + i1 * ss[1];                                        \
                O *o = out + i0 * os[0] + i1 * os[1];                                              \
                if (direct) {                                                                      \
                    for (idx i2 = 0; i2 < n2; i2++)                                                \
                        NAME##_run(s + i2 * ss[2], o + i2 * os[2], n3, 1, 1, ab, has_shift, sh,    \
                                   has_mul, mu, M);                                                \
                    continue;                                                                      \
                }                                                                                  \
                if (n3 <= 256) { /* whole rows of the last axis per chunk */                       \
                    const idx rows_per = 256 / n3;                                                 \
                    for (idx r0 = 0; r0 < n2; r0 += rows_per) {                                    \
                        const idx r1 = n2 - r0 < rows_per ? n2 : r0 + rows_per;                    \
                        idx k = 0;                                                                 \
                        switch (n3) { /* the channel slices: constant trip counts */               \
                        case 1: DMAP_GATHER(1) break;                                              \
                        case 2: DMAP_GATHER(2) break;                                              \
                        case 3: DMAP_GATHER(3) break;                                              \
                        case 4: DMAP_GATHER(4) break;                                              \
                        default: DMAP_GATHER(n3)                                                   \
                        }                                                                          \
                        NAME##_run(tmp, otmp, k, 1, 1, ab, has_shift, sh, has_mul, mu, M);         \
                        k = 0;                                                                     \
                        switch (n3) {                                                              \
                        case 1: DMAP_SCATTER(1) break;                                             \
                        case 2: DMAP_SCATTER(2) break;                                             \
                        case 3: DMAP_SCATTER(3) break;                                             \
                        case 4: DMAP_SCATTER(4) break;                                             \
                        default: DMAP_SCATTER(n3)                                                  \
                        }                                                                          \
                    }                                                                              \
                    continue;                                                                      \
                }                                                                                  \
                for (idx r = 0; r < n2; r++) /* long strided rows: 256 values at a time */         \
                    for (idx k0 = 0; k0 < n3; k0 += 256) {                                         \
                        const idx len = n3 - k0 < 256 ? n3 - k0 : 256;                             \
                        const T *sk = s + r * ss[2] + k0 * ss[3];                                  \
                        O *ok = o + r * os[2] + k0 * os[3];                                        \
                        for (idx k = 0; k < len; k++) tmp[k] = sk[k * ss[3]];                      \
                        NAME##_run(tmp, otmp, len, 1, 1, ab, has_shift, sh, has_mul, mu, M);       \
                        for (idx k = 0; k < len; k++) ok[k * os[3]] = otmp[k];                     \
                    }                                                                              \
            }                                                                                      \
    }

DISPLAY_MAP(float, uint8_t, dmap_f32_u8, 12582912.0)
DISPLAY_MAP(float, uint16_t, dmap_f32_u16, 12582912.0)
DISPLAY_MAP(double, uint8_t, dmap_f64_u8, 6755399441055744.0)
DISPLAY_MAP(double, uint16_t, dmap_f64_u16, 6755399441055744.0)

/* Statistics of a band for the display rules (convcli.job._StatsAccumulator):
 * the smallest and largest finite value (+inf / -inf when none), whether a NaN is there, and
 * sample[i] = |src[first + i*step]| (NaN -> 0). Finite / NaN are tested on the bits (exponent
 * all ones), so the loop runs on 32-byte vectors; with step 1 the sample is written in the
 * same pass. */
#define BAND_STATS(T, V, IV, IT, NAME, EXP, ABSMASK)                                               \
    CLONES static int NAME(const T *restrict src, idx n, T *restrict sample, idx first, idx step,  \
                           T *low_out, T *high_out)                                                \
    {                                                                                              \
        enum { L = (int)(sizeof(V) / sizeof(T)) };                                                 \
        V lo, hi;                                                                                  \
        IV nan = {0};                                                                              \
        for (int k = 0; k < L; k++) { lo[k] = (T)INFINITY; hi[k] = -(T)INFINITY; }                 \
        const V pinf = lo, minf = hi, zero = {0};                                                  \
        const int fused = step == 1 && first == 0;                                                 \
        idx k = 0;                                                                                 \
        for (; k + L <= n; k += L) {                                                               \
            V x;                                                                                   \
            memcpy(&x, src + k, sizeof x);                                                         \
            const IV bits = (IV)x & (IT)ABSMASK;                                                   \
            const IV fin = bits < (IT)EXP, isnan = bits > (IT)EXP;                                 \
            nan |= isnan;                                                                          \
            const V xl = VSELECT(V, IV, fin, x, pinf), xh = VSELECT(V, IV, fin, x, minf);          \
            lo = VSELECT(V, IV, xl < lo, xl, lo);                                                  \
            hi = VSELECT(V, IV, xh > hi, xh, hi);                                                  \
            if (fused) {                                                                           \
                const V a = VSELECT(V, IV, isnan, zero, (V)bits);                                  \
                memcpy(sample + k, &a, sizeof a);                                                  \
            }                                                                                      \
        }                                                                                          \
        T l = lo[0], h = hi[0];                                                                    \
        int has_nan = 0;                                                                           \
        for (int j = 0; j < L; j++) {                                                              \
            l = lo[j] < l ? lo[j] : l;                                                             \
            h = hi[j] > h ? hi[j] : h;                                                             \
            has_nan |= nan[j] != 0;                                                                \
        }                                                                                          \
        for (; k < n; k++) {                                                                       \
            const T x = src[k];                                                                    \
            if (x != x) has_nan = 1;                                                               \
            else if (x - x == 0) { l = x < l ? x : l; h = x > h ? x : h; }                         \
            if (fused) sample[k] = x != x ? 0 : x < 0 ? -x : x;                                    \
        }                                                                                          \
        if (!fused)                                                                                \
            for (idx i = 0, j = first; j < n; i++, j += step) {                                    \
                const T x = src[j];                                                                \
                sample[i] = x != x ? 0 : x < 0 ? -x : x;                                           \
            }                                                                                      \
        *low_out = l;                                                                              \
        *high_out = h;                                                                             \
        return has_nan;                                                                            \
    }

typedef int32_t v8i __attribute__((vector_size(32)));

BAND_STATS(float, v8f, v8i, int32_t, stats_f32, 0x7f800000, 0x7fffffff)
BAND_STATS(double, v4d, v4l, int64_t, stats_f64, 0x7ff0000000000000ll, 0x7fffffffffffffffll)

/* ------------------------------------------------------------------------ */
/* PNG row filters                                                            */
/* ------------------------------------------------------------------------ */

static inline uint8_t paeth(int a, int b, int c)
{
    const int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return (uint8_t)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* sum over a row of |x| with x the filtered byte read as int8 (PNG's "minimum sum of absolute
 * differences" heuristic) */
static inline uint64_t sub_score(const uint8_t *restrict r, idx rb, idx bpp)
{
    uint64_t s = 0;
    for (idx k = 0; k < bpp && k < rb; k++) s += (uint64_t)abs((int8_t)r[k]);
    for (idx k = bpp; k < rb; k++) s += (uint64_t)abs((int8_t)(uint8_t)(r[k] - r[k - bpp]));
    return s;
}

static inline uint64_t up_score(const uint8_t *restrict r, const uint8_t *restrict up, idx rb)
{
    uint64_t s = 0;
    for (idx k = 0; k < rb; k++) s += (uint64_t)abs((int8_t)(uint8_t)(r[k] - up[k]));
    return s;
}

static uint64_t paeth_row(const uint8_t *restrict r, const uint8_t *restrict up, uint8_t *restrict o,
                          idx rb, idx bpp)
{
    uint64_t s = 0;
    for (idx k = 0; k < rb; k++) {
        const int a = k >= bpp ? r[k - bpp] : 0, c = k >= bpp ? up[k - bpp] : 0;
        o[k] = (uint8_t)(r[k] - paeth(a, up[k], c));
        s += (uint64_t)abs((int8_t)o[k]);
    }
    return s;
}

/* out row i = [type, filtered bytes]: of Sub (1), Up (2) and, with paeth, Paeth (4) the one
 * with the smallest score, the first on ties (the order of convcli.png._filter_rows) */
CLONES static void png_filter(const uint8_t *rows, const uint8_t *previous, uint8_t *out, idx n,
                              idx rb, idx bpp, int with_paeth, uint8_t *scratch)
{
    for (idx i = 0; i < n; i++) {
        const uint8_t *r = rows + i * rb, *up = i ? r - rb : previous;
        uint8_t *o = out + i * (rb + 1);
        const uint64_t s_sub = sub_score(r, rb, bpp), s_up = up_score(r, up, rb);
        uint64_t best = s_sub;
        int kind = 1;
        if (s_up < best) { best = s_up; kind = 2; }
        if (with_paeth && paeth_row(r, up, scratch, rb, bpp) < best) kind = 4;
        o[0] = (uint8_t)kind;
        if (kind == 4) {
            memcpy(o + 1, scratch, (size_t)rb);
        } else if (kind == 2) {
            for (idx k = 0; k < rb; k++) o[1 + k] = (uint8_t)(r[k] - up[k]);
        } else {
            for (idx k = 0; k < bpp && k < rb; k++) o[1 + k] = r[k];
            for (idx k = bpp; k < rb; k++) o[1 + k] = (uint8_t)(r[k] - r[k - bpp]);
        }
    }
}


/* ------------------------------------------------------------------------ */
/* reusable output blocks                                                    */
/* ------------------------------------------------------------------------ */

/* A Block is a writable, 64-byte aligned buffer (buffer protocol) that numpy wraps with
 * np.frombuffer. When the last array on it dies, a large block goes to a small cache
 * instead of back to the system, and the next request of a similar size takes it: its
 * pages are already mapped, so the kernel does not clear them again (on this class of
 * machine, first touch of fresh memory costs about as much as a 3x3 correlation's pass
 * over it). The cache holds at most CACHE_SLOTS blocks and cache_limit bytes. */
#include <pthread.h>
#include <sys/mman.h>

enum { CACHE_SLOTS = 4 };
typedef struct {
    PyObject_HEAD
    void *data;
    size_t size;     /* usable bytes (what was asked) */
    size_t capacity; /* bytes allocated */
    Py_ssize_t shape[1];
    int exports;
} Block;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void *cache_data[CACHE_SLOTS];
static size_t cache_size[CACHE_SLOTS];
static size_t cache_total = 0;
static size_t cache_limit = (size_t)512 << 20;
static const size_t CACHE_MIN = (size_t)4 << 20;

static void *cache_take(size_t want, size_t *capacity)
{
    void *found = NULL;
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache_data[i] && cache_size[i] >= want && cache_size[i] <= want + want / 2 &&
            (best < 0 || cache_size[i] < cache_size[best]))
            best = i;
    if (best >= 0) {
        found = cache_data[best];
        *capacity = cache_size[best];
        cache_total -= cache_size[best];
        cache_data[best] = NULL;
        cache_size[best] = 0;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

/* keep (data, capacity) if there is room, else give it back; the oldest-smallest goes first */
static void cache_give(void *data, size_t capacity)
{
    void *drop = NULL;
    pthread_mutex_lock(&cache_lock);
    if (capacity >= CACHE_MIN && capacity <= cache_limit) {
        int slot = -1;
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (!cache_data[i]) { slot = i; break; }
        if (slot < 0) { /* evict the smallest */
            slot = 0;
            for (int i = 1; i < CACHE_SLOTS; i++)
                if (cache_size[i] < cache_size[slot]) slot = i;
            if (cache_size[slot] > capacity) { drop = data; goto done; }
            free(cache_data[slot]);
            cache_total -= cache_size[slot];
            cache_data[slot] = NULL;
        }
        while (cache_total + capacity > cache_limit) { /* make room: free the largest others */
            int big = -1;
            for (int i = 0; i < CACHE_SLOTS; i++)
                if (cache_data[i] && (big < 0 || cache_size[i] > cache_size[big])) big = i;
            if (big < 0) break;
            free(cache_data[big]);
            cache_total -= cache_size[big];
            cache_data[big] = NULL;
            cache_size[big] = 0;
        }
        cache_data[slot] = data;
        cache_size[slot] = capacity;
        cache_total += capacity;
    } else {
        drop = data;
    }
done:
    pthread_mutex_unlock(&cache_lock);
    free(drop);
}

static void block_dealloc(Block *self)
{
    if (self->data) cache_give(self->data, self->capacity);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int block_getbuffer(Block *self, Py_buffer *view, int flags)
{
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->data, (Py_ssize_t)self->size, 0, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void block_releasebuffer(Block *self, Py_buffer *view)
{
    (void)view;
    self->exports--;
}

static PyBufferProcs block_as_buffer = {(getbufferproc)block_getbuffer, (releasebufferproc)block_releasebuffer};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "convcli.engines._cnative.Block",
    .tp_basicsize = sizeof(Block),
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A writable buffer from convcli's block cache (wrap it with numpy.frombuffer).",
};

static PyObject *py_block(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t nbytes;
    if (!PyArg_ParseTuple(args, "n", &nbytes)) return NULL;
    if (nbytes < 0) {
        PyErr_SetString(PyExc_ValueError, "block: nbytes must be >= 0");
        return NULL;
    }
    size_t want = (size_t)nbytes ? (size_t)nbytes : 1, capacity = 0;
    void *data = want >= CACHE_MIN ? cache_take(want, &capacity) : NULL;
    if (!data) {
        capacity = (want + 63) & ~(size_t)63;
        const size_t align = capacity >= ((size_t)2 << 20) ? ((size_t)2 << 20) : 64;
        if (posix_memalign(&data, align, capacity) != 0) return PyErr_NoMemory();
#ifdef MADV_HUGEPAGE
        if (align > 64) madvise(data, capacity, MADV_HUGEPAGE); /* fewer faults; advice only */
#endif
    }
    Block *block = PyObject_New(Block, &BlockType);
    if (!block) {
        cache_give(data, capacity);
        return NULL;
    }
    block->data = data;
    block->size = (size_t)nbytes;
    block->capacity = capacity;
    block->exports = 0;
    return (PyObject *)block;
}

static PyObject *py_block_cache(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTuple(args, "|n", &limit)) return NULL;
    pthread_mutex_lock(&cache_lock);
    if (limit >= 0) {
        cache_limit = (size_t)limit;
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (cache_data[i] && cache_total > cache_limit) {
                free(cache_data[i]);
                cache_total -= cache_size[i];
                cache_data[i] = NULL;
                cache_size[i] = 0;
            }
    }
    int count = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) count += cache_data[i] != NULL;
    PyObject *result = Py_BuildValue("(nni)", (Py_ssize_t)cache_total, (Py_ssize_t)cache_limit, count);
    pthread_mutex_unlock(&cache_lock);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Python bindings                                                           */
/* ------------------------------------------------------------------------ */

/* 'f', 'd', 'B', 'H' (a native-order format character), or 0 */
static char fmt_code(const Py_buffer *b)
{
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    if (f[0] && !f[1] && strchr("fdBH", f[0])) return f[0];
    return 0;
}

static int get_buffer(PyObject *obj, Py_buffer *b, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, b, flags) < 0) return -1;
    if (!fmt_code(b)) {
        PyErr_Format(PyExc_TypeError, "%s: unsupported element type %s", name,
                     b->format ? b->format : "?");
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

static PyObject *py_correlate(PyObject *self, PyObject *args)
{
    PyObject *ob, *ow, *oo;
    geometry g;
    idx band_cols;
    g.op = -1;
    if (!PyArg_ParseTuple(args, "OOOnnnnnnnnnnnp|i", &ob, &ow, &oo, &band_cols, &g.C, &g.F, &g.kh,
                          &g.kw, &g.R, &g.Wo, &g.sr, &g.sc, &g.dr, &g.dc, &g.depthwise, &g.op))
        return NULL;
    if (g.op < -1 || g.op > 3 || (g.op >= 0 && !g.depthwise)) {
        PyErr_SetString(PyExc_ValueError, "correlate: op must be -1, or 0..3 with depthwise");
        return NULL;
    }
    if (g.C < 1 || g.F < 1 || g.kh < 1 || g.kw < 1 || g.R < 0 || g.Wo < 0 || g.sr < 1 || g.sc < 1 ||
        g.dr < 1 || g.dc < 1 || band_cols < 1) {
        PyErr_SetString(PyExc_ValueError, "correlate: bad geometry");
        return NULL;
    }
    Py_buffer bb, bw, bo;
    if (get_buffer(ob, &bb, 0, "band") < 0) return NULL;
    if (get_buffer(ow, &bw, 0, "weights") < 0) { PyBuffer_Release(&bb); return NULL; }
    if (get_buffer(oo, &bo, 1, "out") < 0) { PyBuffer_Release(&bb); PyBuffer_Release(&bw); return NULL; }
    PyObject *result = NULL;
    const char code = fmt_code(&bb);
    const idx item = code == 'f' ? 4 : 8;
    const idx N = g.op >= 0 ? g.C : g.depthwise ? g.F * g.C : g.F;
    g.Wp = band_cols;
    g.P = bb.len / item / (band_cols * g.C);
    if ((code != 'f' && code != 'd') || fmt_code(&bw) != code || fmt_code(&bo) != code) {
        PyErr_SetString(PyExc_TypeError, "correlate: band, weights and out must all be float32 or all float64");
    } else if (bb.len != g.P * band_cols * g.C * item || bw.len != g.F * g.kh * g.kw * g.C * item ||
               bo.len != g.R * g.Wo * N * item) {
        PyErr_SetString(PyExc_ValueError, "correlate: a buffer's size does not match the geometry");
    } else if (g.R > 0 && g.Wo > 0 &&
               (g.P < g.sr * (g.R - 1) + g.dr * (g.kh - 1) + 1 ||
                g.Wp < g.sc * (g.Wo - 1) + g.dc * (g.kw - 1) + 1)) {
        PyErr_SetString(PyExc_ValueError, "correlate: the band is too small for the outputs");
    } else {
        int status = 0;
        g.ors = g.Wo * N;
        if (g.R > 0 && g.Wo > 0) {
            Py_BEGIN_ALLOW_THREADS
            /* one filter on interleaved channels, else the planar multi-filter loop */
            const int interleaved = g.op >= 0 || (g.F == 1 && (g.depthwise || g.C == 1));
            const void **rows = (const void **)malloc(sizeof(void *) * (size_t)(g.P + 1));
            if (!rows) status = -1;
            for (idx i = 0; rows && i < g.P; i++) rows[i] = (const char *)bb.buf + i * band_cols * g.C * item;
            if (!rows)
                ;
            else if (code == 'f')
                status = (interleaved ? corr_f32 : planar_f32)((const float *const *)rows,
                                                                (const float *)bw.buf, (float *)bo.buf, &g);
            else
                status = (interleaved ? corr_f64 : planar_f64)((const double *const *)rows,
                                                                (const double *)bw.buf, (double *)bo.buf, &g);
            free((void *)rows);
            Py_END_ALLOW_THREADS
        }
        if (status < 0) PyErr_NoMemory();
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bb);
    PyBuffer_Release(&bw);
    PyBuffer_Release(&bo);
    return result;
}

/* an index map: a C-contiguous buffer of 8-byte signed integers (numpy intp / int64) */
static int get_index(PyObject *obj, Py_buffer *b, const char *name)
{
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    if (b->itemsize != 8 || !f[0] || f[1] || !strchr("lqn", f[0])) {
        PyErr_Format(PyExc_TypeError, "%s: expected 8-byte integers, got %s", name, b->format ? b->format : "?");
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

/* buffers of objs[k] by kinds[k]: 'r' a readable array, 'w' a writable one, 'i' an index map;
 * on failure the ones already taken are released and -1 returned */
static int take_buffers(PyObject *const *objs, Py_buffer *bufs, const char *kinds, const char *const *names)
{
    for (int k = 0; kinds[k]; k++) {
        const int status = kinds[k] == 'i' ? get_index(objs[k], &bufs[k], names[k])
                                           : get_buffer(objs[k], &bufs[k], kinds[k] == 'w', names[k]);
        if (status < 0) {
            while (k--) PyBuffer_Release(&bufs[k]);
            return -1;
        }
    }
    return 0;
}

static void release_buffers(Py_buffer *bufs, int n)
{
    for (int k = 0; k < n; k++) PyBuffer_Release(&bufs[k]);
}

/* the padded source of image (H, W, C) by rmap / cmap: every entry in [-1, H) / [-1, W), and
 * cmap[q] == q - left over the image's columns; a message, or NULL */
static const char *check_padsrc(padsrc *ps, const Py_buffer *br, const Py_buffer *bc)
{
    ps->nr = br->len / 8;
    ps->nc = bc->len / 8;
    ps->rmap = (const idx *)br->buf;
    ps->cmap = (const idx *)bc->buf;
    if (ps->H < 1 || ps->W < 1 || ps->left < 0 || ps->left + ps->W > ps->nc) return "bad image size or left pad";
    if (ps->chk_lo < 0 || ps->chk_hi > ps->nr || ps->chk_lo > ps->chk_hi)
        return "the rows to check are out of the row map";
    for (idx i = 0; i < ps->nr; i++)
        if (ps->rmap[i] < -1 || ps->rmap[i] >= ps->H) return "a row index is out of range";
    for (idx q = 0; q < ps->nc; q++) {
        const idx v = ps->cmap[q];
        if (v < -1 || v >= ps->W) return "a column index is out of range";
        if (q >= ps->left && q < ps->left + ps->W && v != q - ps->left)
            return "cmap does not hold the image's columns at left";
    }
    return NULL;
}

static PyObject *py_correlate_image(PyObject *self, PyObject *args)
{
    PyObject *oi, *orm, *ocm, *ow, *oo;
    geometry g;
    padsrc ps;
    g.op = -1;
    ps.chk_lo = ps.chk_hi = ps.chk_done = 0;
    ps.nonfinite = 0;
    if (!PyArg_ParseTuple(args, "OOOndOOnnnnnnnnnnp|inn", &oi, &orm, &ocm, &ps.left, &ps.fill, &ow, &oo,
                          &ps.H, &ps.W, &g.C, &g.F, &g.kh, &g.kw, &g.sr, &g.sc, &g.dr, &g.dc,
                          &g.depthwise, &g.op, &ps.chk_lo, &ps.chk_hi))
        return NULL;
    if (g.op < -1 || g.op > 3 || (g.op >= 0 && !g.depthwise)) {
        PyErr_SetString(PyExc_ValueError, "correlate_image: op must be -1, or 0..3 with depthwise");
        return NULL;
    }
    if (g.C < 1 || g.F < 1 || g.kh < 1 || g.kw < 1 || g.sr < 1 || g.sc < 1 || g.dr < 1 || g.dc < 1) {
        PyErr_SetString(PyExc_ValueError, "correlate_image: bad geometry");
        return NULL;
    }
    Py_buffer bufs[5];
    PyObject *objs[5] = {oi, orm, ocm, ow, oo};
    static const char *const names[5] = {"image", "rmap", "cmap", "weights", "out"};
    if (take_buffers(objs, bufs, "riirw", names) < 0) return NULL;
    Py_buffer *const bi = &bufs[0], *const br = &bufs[1], *const bc = &bufs[2], *const bw = &bufs[3],
                     *const bo = &bufs[4];
    PyObject *result = NULL;
    const char code = fmt_code(bi);
    const idx item = code == 'f' ? 4 : 8;
    const idx N = g.op >= 0 ? g.C : g.depthwise ? g.F * g.C : g.F;
    const char *bad = check_padsrc(&ps, br, bc);
    g.P = ps.nr;
    g.Wp = ps.nc;
    g.Wo = bo->shape && bo->ndim == 3 ? bo->shape[1] : 0;
    g.R = g.Wo > 0 ? bo->len / item / (g.Wo * N) : 0;
    g.ors = g.Wo * N;
    if ((code != 'f' && code != 'd') || fmt_code(bw) != code || fmt_code(bo) != code) {
        PyErr_SetString(PyExc_TypeError, "correlate_image: image, weights and out must all be float32 or all float64");
    } else if (bad) {
        PyErr_Format(PyExc_ValueError, "correlate_image: %s", bad);
    } else if (bo->ndim != 3 || bi->len != ps.H * ps.W * g.C * item || bw->len != g.F * g.kh * g.kw * g.C * item ||
               bo->len != g.R * g.Wo * N * item || bo->shape[2] != N) {
        PyErr_SetString(PyExc_ValueError, "correlate_image: a buffer's size does not match the geometry");
    } else if (g.R > 0 && g.Wo > 0 &&
               (g.P < g.sr * (g.R - 1) + g.dr * (g.kh - 1) + 1 ||
                g.Wp < g.sc * (g.Wo - 1) + g.dc * (g.kw - 1) + 1)) {
        PyErr_SetString(PyExc_ValueError, "correlate_image: the maps are too short for the outputs");
    } else {
        int status = 0;
        if (g.R > 0 && g.Wo > 0) {
            Py_BEGIN_ALLOW_THREADS
            if (code == 'f')
                status = corr_image_f32((const float *)bi->buf, &ps, (const float *)bw->buf, (float *)bo->buf, &g);
            else
                status = corr_image_f64((const double *)bi->buf, &ps, (const double *)bw->buf, (double *)bo->buf, &g);
            Py_END_ALLOW_THREADS
        }
        if (status < 0) PyErr_NoMemory();
        else result = PyBool_FromLong(!ps.nonfinite);
    }
    release_buffers(bufs, 5);
    return result;
}

static PyObject *py_separable_image(PyObject *self, PyObject *args)
{
    PyObject *oi, *orm, *ocm, *ou, *ov, *oo;
    geometry g;
    padsrc ps;
    idx K;
    ps.chk_lo = ps.chk_hi = ps.chk_done = 0;
    ps.nonfinite = 0;
    if (!PyArg_ParseTuple(args, "OOOndOOOnnnnnnnnn|nn", &oi, &orm, &ocm, &ps.left, &ps.fill, &ou, &ov, &oo,
                          &ps.H, &ps.W, &g.C, &K, &g.kh, &g.kw, &g.sr, &g.dr, &g.dc, &ps.chk_lo,
                          &ps.chk_hi))
        return NULL;
    if (g.C < 1 || K < 1 || g.kh < 1 || g.kw < 1 || g.sr < 1 || g.dr < 1 || g.dc < 1) {
        PyErr_SetString(PyExc_ValueError, "separable_image: bad geometry");
        return NULL;
    }
    Py_buffer bufs[6];
    PyObject *objs[6] = {oi, orm, ocm, ou, ov, oo};
    static const char *const names[6] = {"image", "rmap", "cmap", "u", "v", "out"};
    if (take_buffers(objs, bufs, "riirrw", names) < 0) return NULL;
    Py_buffer *const bi = &bufs[0], *const br = &bufs[1], *const bc = &bufs[2], *const bu = &bufs[3],
                     *const bv = &bufs[4], *const bo = &bufs[5];
    PyObject *result = NULL;
    const char code = fmt_code(bi);
    const idx item = code == 'f' ? 4 : 8;
    const char *bad = check_padsrc(&ps, br, bc);
    g.P = ps.nr;
    g.Wo = bo->ndim == 3 ? bo->shape[1] : 0;
    g.R = g.Wo > 0 ? bo->len / item / (g.Wo * g.C) : 0;
    g.ors = g.Wo * g.C;
    if ((code != 'f' && code != 'd') || fmt_code(bu) != code || fmt_code(bv) != code ||
        fmt_code(bo) != code) {
        PyErr_SetString(PyExc_TypeError, "separable_image: image, u, v and out must all be float32 or all float64");
    } else if (bad) {
        PyErr_Format(PyExc_ValueError, "separable_image: %s", bad);
    } else if (bo->ndim != 3 || bi->len != ps.H * ps.W * g.C * item || bu->len != K * g.kh * g.C * item ||
               bv->len != K * g.kw * g.C * item || bo->len != g.R * g.Wo * g.C * item || bo->shape[2] != g.C) {
        PyErr_SetString(PyExc_ValueError, "separable_image: a buffer's size does not match the geometry");
    } else if (g.R > 0 && g.Wo > 0 &&
               (g.P < g.sr * (g.R - 1) + g.dr * (g.kh - 1) + 1 || ps.nc < g.Wo + g.dc * (g.kw - 1))) {
        PyErr_SetString(PyExc_ValueError, "separable_image: the maps are too short for the outputs");
    } else {
        int status = 0;
        if (g.R > 0 && g.Wo > 0) {
            Py_BEGIN_ALLOW_THREADS
            if (code == 'f')
                status = sep_image_f32((const float *)bi->buf, &ps, (const float *)bu->buf, (const float *)bv->buf,
                                       K, (float *)bo->buf, &g);
            else
                status = sep_image_f64((const double *)bi->buf, &ps, (const double *)bu->buf,
                                       (const double *)bv->buf, K, (double *)bo->buf, &g);
            Py_END_ALLOW_THREADS
        }
        if (status < 0) PyErr_NoMemory();
        else result = PyBool_FromLong(!ps.nonfinite);
    }
    release_buffers(bufs, 6);
    return result;
}

static PyObject *py_channel_sum(PyObject *self, PyObject *args)
{
    PyObject *os, *oo, *oweights;
    idx n, C;
    if (!PyArg_ParseTuple(args, "OOnnO", &os, &oo, &n, &C, &oweights)) return NULL;
    double weights[16];
    idx nw = 0;
    if (oweights != Py_None) {
        PyObject *seq = PySequence_Fast(oweights, "channel_sum: weights must be a sequence");
        if (!seq) return NULL;
        nw = PySequence_Fast_GET_SIZE(seq);
        if (nw < 1 || nw > 16 || nw > C) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "channel_sum: 1 to min(16, C) weights");
            return NULL;
        }
        for (idx i = 0; i < nw; i++) weights[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        Py_DECREF(seq);
        if (PyErr_Occurred()) return NULL;
    }
    if (n < 0 || C < 1) {
        PyErr_SetString(PyExc_ValueError, "channel_sum: bad sizes");
        return NULL;
    }
    Py_buffer bs, bo;
    if (get_buffer(os, &bs, 0, "src") < 0) return NULL;
    if (get_buffer(oo, &bo, 1, "out") < 0) { PyBuffer_Release(&bs); return NULL; }
    PyObject *result = NULL;
    const char ci = fmt_code(&bs), co = fmt_code(&bo);
    const idx isz = ci == 'B' ? 1 : ci == 'H' ? 2 : ci == 'f' ? 4 : 8;
    const idx osz = co == 'f' ? 4 : 8;
    if (co != 'f' && co != 'd') {
        PyErr_SetString(PyExc_TypeError, "channel_sum: out must be float32 or float64");
    } else if (bs.len != n * C * isz || bo.len != n * osz) {
        PyErr_SetString(PyExc_ValueError, "channel_sum: a buffer's size does not match the geometry");
    } else {
        const double *w = oweights == Py_None ? NULL : weights;
        const void *s = bs.buf;
        void *o = bo.buf;
        Py_BEGIN_ALLOW_THREADS
        if (co == 'f') {
            switch (ci) {
            case 'B': csum_u8_f32(s, o, n, C, w, nw); break;
            case 'H': csum_u16_f32(s, o, n, C, w, nw); break;
            case 'f': csum_f32_f32(s, o, n, C, w, nw); break;
            default: csum_f64_f32(s, o, n, C, w, nw);
            }
        } else {
            switch (ci) {
            case 'B': csum_u8_f64(s, o, n, C, w, nw); break;
            case 'H': csum_u16_f64(s, o, n, C, w, nw); break;
            case 'f': csum_f32_f64(s, o, n, C, w, nw); break;
            default: csum_f64_f64(s, o, n, C, w, nw);
            }
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bo);
    return result;
}

static PyObject *py_reduce_maps(PyObject *self, PyObject *args)
{
    PyObject *os, *oo;
    idx n, F, Ck;
    int op;
    if (!PyArg_ParseTuple(args, "OOnnni", &os, &oo, &n, &F, &Ck, &op)) return NULL;
    if (n < 0 || F < 1 || Ck < 1 || op < 0 || op > 3) {
        PyErr_SetString(PyExc_ValueError, "reduce_maps: bad sizes or op");
        return NULL;
    }
    Py_buffer bs, bo;
    if (get_buffer(os, &bs, 0, "src") < 0) return NULL;
    if (get_buffer(oo, &bo, 1, "out") < 0) { PyBuffer_Release(&bs); return NULL; }
    PyObject *result = NULL;
    const char code = fmt_code(&bs);
    const idx item = code == 'f' ? 4 : 8;
    if ((code != 'f' && code != 'd') || fmt_code(&bo) != code) {
        PyErr_SetString(PyExc_TypeError, "reduce_maps: src and out must both be float32 or float64");
    } else if (bs.len != n * F * Ck * item || bo.len != n * Ck * item) {
        PyErr_SetString(PyExc_ValueError, "reduce_maps: a buffer's size does not match the geometry");
    } else {
        Py_BEGIN_ALLOW_THREADS
        if (code == 'f') reduce_f32(bs.buf, bo.buf, n, F, Ck, op);
        else reduce_f64(bs.buf, bo.buf, n, F, Ck, op);
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bo);
    return result;
}

static PyObject *py_png_filter(PyObject *self, PyObject *args)
{
    PyObject *orows, *oprev, *oout;
    idx n, rb, bpp;
    int with_paeth;
    if (!PyArg_ParseTuple(args, "OOOnnnp", &orows, &oprev, &oout, &n, &rb, &bpp, &with_paeth)) return NULL;
    if (n < 0 || rb < 1 || bpp < 1 || bpp > 8) {
        PyErr_SetString(PyExc_ValueError, "png_filter: bad sizes");
        return NULL;
    }
    Py_buffer br, bp, bo;
    if (get_buffer(orows, &br, 0, "rows") < 0) return NULL;
    if (get_buffer(oprev, &bp, 0, "previous") < 0) { PyBuffer_Release(&br); return NULL; }
    if (get_buffer(oout, &bo, 1, "out") < 0) { PyBuffer_Release(&br); PyBuffer_Release(&bp); return NULL; }
    PyObject *result = NULL;
    if (fmt_code(&br) != 'B' || fmt_code(&bp) != 'B' || fmt_code(&bo) != 'B') {
        PyErr_SetString(PyExc_TypeError, "png_filter: rows, previous and out must be uint8");
    } else if (br.len != n * rb || bp.len != rb || bo.len != n * (rb + 1)) {
        PyErr_SetString(PyExc_ValueError, "png_filter: a buffer's size does not match the geometry");
    } else {
        uint8_t *scratch = with_paeth ? (uint8_t *)malloc((size_t)rb) : NULL;
        if (with_paeth && !scratch) {
            PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS
            png_filter(br.buf, bp.buf, bo.buf, n, rb, bpp, with_paeth, scratch);
            Py_END_ALLOW_THREADS
            result = Py_NewRef(Py_None);
        }
        free(scratch);
    }
    PyBuffer_Release(&br);
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bo);
    return result;
}

/* a strided buffer's shape and element strides, merged where both arrays are contiguous across
 * two axes, front-padded to 4 axes; -1 when strides are not element multiples or ndim > 4 */
static int merged_dims(const Py_buffer *a, const Py_buffer *b, idx *shape, idx *sa, idx *sb)
{
    idx sh[4], xa[4], xb[4];
    int m = 0;
    if (a->ndim > 4 || a->ndim != b->ndim) return -1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] != b->shape[i]) return -1;
        if (a->strides[i] % a->itemsize || b->strides[i] % b->itemsize) return -1;
        if (a->shape[i] == 1) continue;
        const idx n = a->shape[i], s1 = a->strides[i] / a->itemsize, s2 = b->strides[i] / b->itemsize;
        if (m > 0 && xa[m - 1] == s1 * n && xb[m - 1] == s2 * n) {
            sh[m - 1] *= n;
            xa[m - 1] = s1;
            xb[m - 1] = s2;
        } else {
            sh[m] = n;
            xa[m] = s1;
            xb[m] = s2;
            m++;
        }
    }
    for (int i = 0; i < 4; i++) {
        const int j = i - (4 - m);
        shape[i] = j >= 0 ? sh[j] : 1;
        sa[i] = j >= 0 ? xa[j] : 0;
        sb[i] = j >= 0 ? xb[j] : 0;
    }
    return 0;
}

static PyObject *py_display_map(PyObject *self, PyObject *args)
{
    PyObject *os, *oo;
    int ab, has_shift, has_mul, zero;
    double shift, mul, max_value;
    if (!PyArg_ParseTuple(args, "OOpdpdpd", &os, &oo, &ab, &shift, &has_shift, &mul, &has_mul, &max_value))
        return NULL;
    zero = mul == 0.0;
    Py_buffer bs, bo;
    if (PyObject_GetBuffer(os, &bs, PyBUF_RECORDS_RO) < 0) return NULL;
    if (PyObject_GetBuffer(oo, &bo, PyBUF_RECORDS) < 0) { PyBuffer_Release(&bs); return NULL; }
    PyObject *result = NULL;
    const char ci = fmt_code(&bs), co = fmt_code(&bo);
    idx shape[4], ss[4], so[4];
    if ((ci != 'f' && ci != 'd') || (co != 'B' && co != 'H')) {
        PyErr_SetString(PyExc_TypeError, "display_map: src must be float32/float64 and out uint8/uint16");
    } else if (!(max_value >= 0 && max_value <= (co == 'B' ? 255 : 65535))) {
        PyErr_SetString(PyExc_ValueError, "display_map: max_value does not fit the output type");
    } else if (merged_dims(&bs, &bo, shape, ss, so) < 0) {
        PyErr_SetString(PyExc_ValueError, "display_map: src and out must have the same shape (at most 4-d)");
    } else {
        const void *s = bs.buf;
        void *o = bo.buf;
        Py_BEGIN_ALLOW_THREADS
        if (ci == 'f' && co == 'B')
            dmap_f32_u8(s, o, shape, ss, so, ab, has_shift, shift, has_mul, mul, zero, max_value);
        else if (ci == 'f')
            dmap_f32_u16(s, o, shape, ss, so, ab, has_shift, shift, has_mul, mul, zero, max_value);
        else if (co == 'B')
            dmap_f64_u8(s, o, shape, ss, so, ab, has_shift, shift, has_mul, mul, zero, max_value);
        else
            dmap_f64_u16(s, o, shape, ss, so, ab, has_shift, shift, has_mul, mul, zero, max_value);
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bo);
    return result;
}

static PyObject *py_band_stats(PyObject *self, PyObject *args)
{
    PyObject *os, *osample;
    idx first, step;
    if (!PyArg_ParseTuple(args, "OOnn", &os, &osample, &first, &step)) return NULL;
    if (first < 0 || step < 1) {
        PyErr_SetString(PyExc_ValueError, "band_stats: first >= 0 and step >= 1");
        return NULL;
    }
    Py_buffer bs, bm;
    if (get_buffer(os, &bs, 0, "src") < 0) return NULL;
    if (get_buffer(osample, &bm, 1, "sample") < 0) { PyBuffer_Release(&bs); return NULL; }
    PyObject *result = NULL;
    const char code = fmt_code(&bs);
    const idx item = code == 'f' ? 4 : 8;
    const idx n = bs.len / item;
    const idx count = first < n ? (n - first + step - 1) / step : 0;
    if ((code != 'f' && code != 'd') || fmt_code(&bm) != code) {
        PyErr_SetString(PyExc_TypeError, "band_stats: src and sample must both be float32 or float64");
    } else if (bm.len != count * item) {
        PyErr_SetString(PyExc_ValueError, "band_stats: sample must hold len(src[first::step]) values");
    } else {
        int has_nan;
        double low, high;
        Py_BEGIN_ALLOW_THREADS
        if (code == 'f') {
            float l, h;
            has_nan = stats_f32(bs.buf, n, bm.buf, first, step, &l, &h);
            low = l;
            high = h;
        } else {
            has_nan = stats_f64(bs.buf, n, bm.buf, first, step, &low, &high);
        }
        Py_END_ALLOW_THREADS
        result = Py_BuildValue("ddO", low, high, has_nan ? Py_True : Py_False);
    }
    PyBuffer_Release(&bs);
    PyBuffer_Release(&bm);
    return result;
}

static PyMethodDef methods[] = {
    {"correlate", py_correlate, METH_VARARGS,
     "correlate(band, weights, out, band_cols, C, F, kh, kw, R, Wo, sr, sc, dr, dc, depthwise, op=-1)"},
    {"correlate_image", py_correlate_image, METH_VARARGS,
     "correlate_image(image, rmap, cmap, left, fill, weights, out, H, W, C, F, kh, kw, sr, sc, dr, dc, "
     "depthwise, op=-1)"},
    {"separable_image", py_separable_image, METH_VARARGS,
     "separable_image(image, rmap, cmap, left, fill, u, v, out, H, W, C, K, kh, kw, sr, dr, dc)"},
    {"channel_sum", py_channel_sum, METH_VARARGS, "channel_sum(src, out, n_pixels, C, weights_or_None)"},
    {"reduce_maps", py_reduce_maps, METH_VARARGS,
     "reduce_maps(src, out, n_pixels, F, Ck, op): op 0 magnitude, 1 max, 2 min, 3 sum"},
    {"png_filter", py_png_filter, METH_VARARGS,
     "png_filter(rows, previous, out, n, row_bytes, bpp, with_paeth): PNG rows filtered (Sub/Up[/Paeth])"},
    {"display_map", py_display_map, METH_VARARGS,
     "display_map(src, out, abs, shift, has_shift, multiplier, has_multiplier, max_value): float maps "
     "(any strides) to uint8/uint16 pixels, bit-identical to convcli.display.apply_mapping's numpy steps"},
    {"band_stats", py_band_stats, METH_VARARGS,
     "band_stats(src, sample, first, step) -> (finite min, finite max, has_nan); "
     "sample[:] = |src[first::step]| with NaN as 0 (src, sample contiguous, same float type)"},
    {"block", py_block, METH_VARARGS,
     "block(nbytes) -> a writable 64-byte aligned buffer; large ones are reused from a small cache"},
    {"block_cache", py_block_cache, METH_VARARGS,
     "block_cache(limit=-1) -> (cached bytes, limit, blocks); limit >= 0 sets it (0 empties the cache)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cnative", "Fused compiled loops of convcli's engines.", -1, methods,
};

PyMODINIT_FUNC PyInit__cnative(void)
{
    if (PyType_Ready(&BlockType) < 0) return NULL;
    return PyModule_Create(&module);
}
