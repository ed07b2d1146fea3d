/* ledwarden fast path: correction fused with the re-encode for 8-bit sinks.
 *
 * Colorlight cards and DDP receivers take 8 bits a channel through their own
 * curve (docs/correction.md, "Cards with their own curve").  One pass reads
 * the frame, applies curve, calibration and gains exactly as lw.c's kernel
 * does, looks each 16-bit result up in the card's uint8[65536] table and
 * writes the byte straight into its packet's payload, so the sink sends
 * views of one buffer: no 16-bit frame, no picture, no copy into packets.
 *
 * The arithmetic is written again here rather than shared with lw.c's
 * block(): that function is the module-scan kernel's inner loop and changes
 * with it, while this one has a different output (bytes at chunked
 * addresses).  The reference (reference.correct_encode) keeps both honest.
 *
 * Without calibration every output byte depends on one input byte, so the
 * curve, gains and table compose into one uint8[3][256] table (`direct`,
 * table[lut_with_gains[c][x]], built by the caller) and a pixel costs three
 * byte lookups.  Otherwise rows are cut into blocks of LW_BLOCK pixels: the
 * corrected values of a block go to three small planes (which GCC vectorises, the curve lookups
 * becoming gathers), then the table lookups write the block out, jumping
 * to the next packet's payload at each chunk boundary.
 */
#include "lw.h"

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LW_ENC_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define LW_ENC_CLONES
#endif

/* ---------------------------------------------------------------- AVX-512 emit
 *
 * The table lookups of a block as gathers: 16 lanes at a time, each a
 * 32-bit load at table + index (hence the 3 readable bytes past each table's
 * end, see lw.h), narrowed to bytes, and the three channels interleaved in
 * payload order by one byte permute.  Chosen at run time, on CPUs with
 * AVX-512 BW and VBMI; the scalar loop below is the portable one. */
#ifdef LW_HAVE_AVX512
#include <immintrin.h>
#define ENC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi")))

static int enc_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vbmi");
}

ENC_AVX512 __attribute__((noinline)) static void
emit_avx512(const uint32_t (*o)[LW_BLOCK], int bl, const uint8_t *table, const uint8_t *perm,
            uint8_t *b)
{
    const __m512i p = _mm512_loadu_si512(perm);
    for (int k0 = 0; k0 < bl; k0 += 16) {
        const int n = bl - k0 < 16 ? bl - k0 : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        __m128i c[3];
        for (int ch = 0; ch < 3; ch++) {
            __m512i idx = _mm512_maskz_loadu_epi32(m, o[ch] + k0);
            __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, table, 1);
            c[ch] = _mm512_cvtepi32_epi8(g);
        }
        __m512i all = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(c[0]), c[1], 1),
                                         c[2], 2);
        _mm512_mask_storeu_epi8(b + 3 * k0, (__mmask64)((1ULL << (3 * n)) - 1),
                                _mm512_permutexvar_epi8(p, all));
    }
}
#endif

static inline uint32_t enc_clamp16(int32_t a)
{
    return (uint32_t)(a < 0 ? 0 : a > 65535 ? 65535 : a);
}

/* One block's corrected values into three planes.  A function of its own,
 * with restrict planes, so the vectoriser sees that nothing aliases (as
 * lw.c's block()). */
static inline __attribute__((always_inline)) void
correct_block(const int mode, const uint32_t *restrict lut, uint32_t ga, uint32_t gb, uint32_t gc,
              const uint8_t *restrict px, int bl, const int16_t *restrict c,
              uint32_t *restrict o0, uint32_t *restrict o1, uint32_t *restrict o2)
{
    for (int k = 0; k < bl; k++) {
        uint32_t g0 = lut[px[3 * k]], g1 = lut[256 + px[3 * k + 1]], g2 = lut[512 + px[3 * k + 2]];
        uint32_t a0, a1, a2;
        if (mode == 1) {
            a0 = enc_clamp16(((int32_t)g0 * c[k] + 8192) >> 14);
            a1 = enc_clamp16(((int32_t)g1 * c[bl + k] + 8192) >> 14);
            a2 = enc_clamp16(((int32_t)g2 * c[2 * bl + k] + 8192) >> 14);
        } else {
            int32_t i0 = (int32_t)g0, i1 = (int32_t)g1, i2 = (int32_t)g2;
            a0 = enc_clamp16((i0 * c[k] + i1 * c[bl + k] + i2 * c[2 * bl + k] + 8192) >> 14);
            a1 = enc_clamp16((i0 * c[3 * bl + k] + i1 * c[4 * bl + k] + i2 * c[5 * bl + k] + 8192) >> 14);
            a2 = enc_clamp16((i0 * c[6 * bl + k] + i1 * c[7 * bl + k] + i2 * c[8 * bl + k] + 8192) >> 14);
        }
        o0[k] = (a0 * ga + 32768u) >> 16;
        o1[k] = (a1 * gb + 32768u) >> 16;
        o2[k] = (a2 * gc + 32768u) >> 16;
    }
}

#ifdef LW_HAVE_AVX512
#define EMIT_AVX512(table) emit_avx512((const uint32_t (*)[LW_BLOCK])o, bl, (table), perm, b)
#else
#define EMIT_AVX512(table) ((void)0)
#endif

static inline __attribute__((always_inline)) void
encode_rows(const int mode, const int avx, const lw_encoding *e, const uint8_t *frame,
            int32_t y0, int32_t y1)
{
    const int q = mode == 2 ? 9 : mode == 1 ? 3 : 0;
    const int64_t W = e->width, R = e->segment, C = e->chunk, per = (R + C - 1) / C;
    const uint32_t ga = e->gains[0], gb = e->gains[1], gc = e->gains[2];
    const uint8_t *restrict T = e->table;
    const uint8_t *restrict D = e->direct;
    const int r0 = e->order[0], r1 = e->order[1], r2 = e->order[2];
    uint8_t perm[64];               /* payload byte 3k + i is channel order[i] of pixel k */
    for (int t = 0; t < 64; t++)
        perm[t] = t < 48 ? (uint8_t)(16 * e->order[t % 3] + t / 3) : 0;
    (void)perm;
    uint32_t lut[768];              /* 32-bit entries: what vector gathers load */
    if (mode != 0)
        for (int i = 0; i < 768; i++)
            lut[i] = e->lut[i];
    uint32_t o[3][LW_BLOCK];
    uint8_t b[3 * LW_BLOCK];        /* a block's bytes in payload order */
    const uint32_t *s0 = o[e->order[0]], *s1 = o[e->order[1]], *s2 = o[e->order[2]];

    for (int64_t y = y0; y < y1; y++) {
        const uint8_t *row = frame + 3 * W * y;
        const int16_t *restrict c = q ? e->coef + y * W * q : NULL;
        /* where the row's first pixel goes, and how many pixels its chunk still takes */
        const int64_t p = y * W;
        int64_t seg = p / R, in_seg = p % R, j = in_seg / C;
        uint8_t *dst = e->out + e->first + (seg * per + j) * e->stride + 3 * (in_seg % C);
        int64_t left = C - in_seg % C < R - in_seg ? C - in_seg % C : R - in_seg;

        for (int64_t x0 = 0; x0 < W; x0 += LW_BLOCK) {
            const int bl = W - x0 < LW_BLOCK ? (int)(W - x0) : LW_BLOCK;
            const uint8_t *restrict px = row + 3 * x0;
            if (mode == 0 && avx) { /* indices into the composed table, then gathers */
                for (int k = 0; k < bl; k++) {
                    o[0][k] = px[3 * k], o[1][k] = 256u + px[3 * k + 1], o[2][k] = 512u + px[3 * k + 2];
                }
                EMIT_AVX512(D);
            } else if (mode == 0) { /* curve, gains and table composed: one byte lookup */
                for (int k = 0; k < bl; k++) {
                    b[3 * k] = D[256 * r0 + px[3 * k + r0]];
                    b[3 * k + 1] = D[256 * r1 + px[3 * k + r1]];
                    b[3 * k + 2] = D[256 * r2 + px[3 * k + r2]];
                }
            } else {
            correct_block(mode, lut, ga, gb, gc, px, bl, c, o[0], o[1], o[2]);
            c += q * bl;
            if (avx) {
                EMIT_AVX512(T);
            } else {
                for (int k = 0; k < bl; k++) {
                    b[3 * k] = T[s0[k]];
                    b[3 * k + 1] = T[s1[k]];
                    b[3 * k + 2] = T[s2[k]];
                }
            }
            }
            for (int k = 0; k < bl;) {
                const int n = bl - k < left ? bl - k : (int)left;
                memcpy(dst, b + 3 * k, 3 * (size_t)n);
                dst += 3 * n, k += n, left -= n, in_seg += n;
                if (left == 0) {    /* the chunk is full: the next packet's payload */
                    if (in_seg == R)
                        seg++, in_seg = 0, j = 0;
                    else
                        j++;
                    dst = e->out + e->first + (seg * per + j) * e->stride;
                    left = C < R - in_seg ? C : R - in_seg;
                }
            }
        }
    }
}

LW_ENC_CLONES
static void encode_band(const lw_encoding *e, const uint8_t *frame, int32_t y0, int32_t y1)
{
#ifdef LW_HAVE_AVX512
    static int avx = -1;            /* benign race: every thread computes the same answer */
    if (avx < 0)
        avx = enc_has_avx512();
    if (avx && !e->portable) {
        switch (e->mode) {
        case 0: encode_rows(0, 1, e, frame, y0, y1); return;
        case 1: encode_rows(1, 1, e, frame, y0, y1); return;
        default: encode_rows(2, 1, e, frame, y0, y1); return;
        }
    }
#endif
    switch (e->mode) {
    case 0: encode_rows(0, 0, e, frame, y0, y1); break;
    case 1: encode_rows(1, 0, e, frame, y0, y1); break;
    default: encode_rows(2, 0, e, frame, y0, y1); break;
    }
}

struct encode_job {
    const lw_encoding *e;
    const uint8_t *frame;
    int32_t band_rows;
};

static void encode_task(void *arg, int32_t band)
{
    const struct encode_job *job = arg;
    int32_t y0 = band * job->band_rows;
    int32_t y1 = job->e->height - y0 < job->band_rows ? job->e->height : y0 + job->band_rows;
    encode_band(job->e, job->frame, y0, y1);
}

int lw_encode(lw_pool *pool, const lw_encoding *e, int32_t band_rows, const uint8_t *frame)
{
    if (e->height <= 0 || e->width <= 0)
        return 0;
    if (band_rows < 1 || e->segment < 1 || e->chunk < 1)
        return -1;
    struct encode_job job = {e, frame, band_rows};
    int32_t n_bands = (e->height + band_rows - 1) / band_rows;
    lw_pool_run(pool, encode_task, &job, n_bands);
    return 0;
}

/* Frame-order coefficients (int16[H][W][q]) into the order encode_rows reads:
 * row by row, in blocks of LW_BLOCK pixels, each block plane-major. */
void lw_encode_relayout(const int16_t *calib, int32_t height, int32_t width, int32_t q,
                        int16_t *coef)
{
    for (int64_t y = 0; y < height; y++) {
        const int16_t *src = calib + y * width * q;
        for (int32_t x0 = 0; x0 < width; x0 += LW_BLOCK) {
            int bl = width - x0 < LW_BLOCK ? width - x0 : LW_BLOCK;
            for (int j = 0; j < q; j++)
                for (int k = 0; k < bl; k++)
                    coef[j * bl + k] = src[(int64_t)(x0 + k) * q + j];
            coef += q * bl;
        }
    }
}
