/* ledwarden fast path: correction fused with the re-encode for 8-bit sinks.
 *
 * Colorlight cards and DDP receivers take 8 bits a channel through their own
 * curve (docs/correction.md, "Cards with their own curve").  One pass over
 * the frame, row by row in bands on the pipeline's thread pool: each row is
 * corrected by lw.c's own kernel (lw_correct_row: the arithmetic exists once
 * and the AVX-512 kernel runs where it can; coefficients re-laid once, at
 * construction, by lw_encode_relayout) into a row of scratch that stays in L1, then every 16-bit value is looked up in the card's uint8[65536]
 * table and written straight into its packet's payload, so the sink sends
 * views of one buffer: no 16-bit frame, no picture, no copy into packets.
 *
 * Without calibration every output byte depends on one input byte, so the
 * curve, gains and table compose into one uint8[3][256] table (`direct`,
 * table[lut_with_gains[c][x]], built by the caller) and a pixel costs three
 * byte lookups, no correction pass.
 *
 * Rows are cut into blocks of LW_BLOCK pixels: a block that fits in its
 * chunk is written straight into the payload; one that straddles a chunk
 * boundary is staged in a small buffer and copied out in two (or more)
 * pieces, jumping to the next packet's payload.
 */
#include "lw.h"

#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LW_ENC_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define LW_ENC_CLONES
#endif

/* ---------------------------------------------------------------- AVX-512 emit
 *
 * A block's bytes in payload order, 16 pixels a step: by byte permutes from
 * the composed table without calibration, by gathers from the card's table
 * with it.  Chosen at run time, on CPUs with AVX-512 BW and VBMI, when the
 * encoder's kernel is lw.c's AVX-512 one; the scalar loops in encode_rows
 * are the portable version. */
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

/* Without calibration: the composed uint8[3][256] table looked up by byte
 * permutes, no gathers.  16 pixels (48 bytes) at a time: one permute puts
 * each pixel's bytes in payload order (byte t then holds channel
 * order[t % 3]), then for each channel two vpermt2b look up its table's low
 * and high 128 entries, bit 7 of the index picks between them, and the
 * channel's bytes are merged in by mask. */
ENC_AVX512 __attribute__((noinline)) static void
emit_direct_avx512(const uint8_t *px, int bl, const uint8_t *direct, const uint8_t *perm16,
                   const uint64_t *channel_mask, uint8_t *b)
{
    const __m512i p = _mm512_loadu_si512(perm16);
    __m512i t[3][4];
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 4; h++)
            t[c][h] = _mm512_loadu_si512(direct + 256 * c + 64 * h);
    for (int k0 = 0; k0 < bl; k0 += 16) {
        const int n = bl - k0 < 16 ? bl - k0 : 16;
        const __mmask64 m = (__mmask64)((1ULL << (3 * n)) - 1);
        __m512i x = _mm512_permutexvar_epi8(p, _mm512_maskz_loadu_epi8(m, px + 3 * k0));
        __mmask64 high = _mm512_movepi8_mask(x);
        __m512i out = _mm512_setzero_si512();
        for (int c = 0; c < 3; c++) {
            __m512i lo = _mm512_permutex2var_epi8(t[c][0], x, t[c][1]);
            __m512i hi = _mm512_permutex2var_epi8(t[c][2], x, t[c][3]);
            out = _mm512_mask_mov_epi8(out, (__mmask64)channel_mask[c],
                                       _mm512_mask_blend_epi8(high, lo, hi));
        }
        _mm512_mask_storeu_epi8(b + 3 * k0, m, out);
    }
}

/* From a corrected row (uint16, RGB interleaved): 16 pixels are 48
 * consecutive values; three gathers, each lane a 32-bit load at table +
 * value (hence the readable bytes past the table's end, see lw.h), narrowed
 * to bytes, give them in RGB order, and one permute puts them in payload
 * order. */
ENC_AVX512 __attribute__((noinline)) static void
emit16_avx512(const uint16_t *v, int bl, const uint8_t *table, const uint8_t *perm, uint8_t *b)
{
    const __m512i p = _mm512_loadu_si512(perm);
    for (int k0 = 0; k0 < bl; k0 += 16) {
        const int n = bl - k0 < 16 ? bl - k0 : 16;
        const uint16_t *src = v + 3 * k0;
        __m128i c[3];
        for (int part = 0; part < 3; part++) {
            const int have = 3 * n - 16 * part;
            const __mmask16 m = have >= 16 ? 0xFFFF : have > 0 ? (__mmask16)((1u << have) - 1) : 0;
            __m512i idx = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + 16 * part));
            __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, table, 1);
            c[part] = _mm512_cvtepi32_epi8(g);
        }
        __m512i all = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(c[0]), c[1], 1),
                                         c[2], 2);
        _mm512_mask_storeu_epi8(b + 3 * k0, (__mmask64)((1ULL << (3 * n)) - 1),
                                _mm512_permutexvar_epi8(p, all));
    }
}
#endif

#ifdef LW_HAVE_AVX512
#define EMIT16_AVX512(v) emit16_avx512((v), bl, T, perm16, to)
#define EMIT_DIRECT_AVX512(px) emit_direct_avx512((px), bl, D, perm16, channel_mask, to)
#else
#define EMIT_DIRECT_AVX512(px) ((void)(px))
#define EMIT16_AVX512(v) ((void)(v))
#endif

/* Rows y0 .. y1 - 1; `row16` is scratch for one corrected row (3 * width),
 * `off` the pixel offsets 0, 3, 6, … of a row (what a one-line module has). */
static inline __attribute__((always_inline)) int
encode_rows(const int mode, const int avx, const lw_encoding *e, const uint8_t *frame,
            int32_t y0, int32_t y1, uint16_t *row16, const int32_t *off)
{
    const int q = mode == 2 ? 9 : mode == 1 ? 3 : 0;
    const int64_t W = e->width, R = e->segment, C = e->chunk, per = (R + C - 1) / C;
    const uint8_t *restrict T = e->table;
    const uint8_t *restrict D = e->direct;
    const int r0 = e->order[0], r1 = e->order[1], r2 = e->order[2];
    uint8_t perm16[64];             /* payload byte 3k + i is channel order[i] of pixel k */
    for (int t = 0; t < 64; t++)
        perm16[t] = t < 48 ? (uint8_t)(t - t % 3 + e->order[t % 3]) : 0;
    uint64_t channel_mask[3] = {0, 0, 0};  /* payload bytes that hold channel c */
    for (int t = 0; t < 48; t++)
        channel_mask[e->order[t % 3]] |= 1ULL << t;
    (void)perm16, (void)channel_mask;
    uint8_t b[3 * LW_BLOCK];        /* a block's bytes in payload order */

    for (int64_t y = y0; y < y1; y++) {
        const uint8_t *row = frame + 3 * W * y;
        if (mode != 0)              /* the row corrected by lw.c's own kernel, into scratch */
            lw_correct_row(e->kernel, row, (int32_t)W, off, e->lut, e->gains, mode,
                           e->coef + y * W * q, row16);
        /* where the row's first pixel goes, and how many pixels its chunk still takes */
        const int64_t p = y * W;
        int64_t seg = p / R, in_seg = p % R, j = in_seg / C;
        uint8_t *dst = e->out + e->first + (seg * per + j) * e->stride + 3 * (in_seg % C);
        int64_t left = C - in_seg % C < R - in_seg ? C - in_seg % C : R - in_seg;

        for (int64_t x0 = 0; x0 < W; x0 += LW_BLOCK) {
            const int bl = W - x0 < LW_BLOCK ? (int)(W - x0) : LW_BLOCK;
            const uint8_t *restrict px = row + 3 * x0;
            /* straight into the payload when the block fits its chunk, else staged */
            uint8_t *to = left >= bl ? dst : b;
            if (mode == 0 && avx) { /* the composed table by byte permutes */
                EMIT_DIRECT_AVX512(px);
            } else if (mode == 0) { /* curve, gains and table composed: one byte lookup */
                for (int k = 0; k < bl; k++) {
                    to[3 * k] = D[256 * r0 + px[3 * k + r0]];
                    to[3 * k + 1] = D[256 * r1 + px[3 * k + r1]];
                    to[3 * k + 2] = D[256 * r2 + px[3 * k + r2]];
                }
            } else if (avx) {
                EMIT16_AVX512(row16 + 3 * x0);
            } else {
                const uint16_t *v = row16 + 3 * x0;
                for (int k = 0; k < bl; k++) {
                    to[3 * k] = T[v[3 * k + r0]];
                    to[3 * k + 1] = T[v[3 * k + r1]];
                    to[3 * k + 2] = T[v[3 * k + r2]];
                }
            }
            for (int k = 0; k < bl;) {
                const int n = bl - k < left ? bl - k : (int)left;
                if (to == b)
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
    return 0;
}

LW_ENC_CLONES
static int encode_band(const lw_encoding *e, const uint8_t *frame, int32_t y0, int32_t y1,
                       uint16_t *row16, const int32_t *off)
{
#ifdef LW_HAVE_AVX512
    static int avx = -1;            /* benign race: every thread computes the same answer */
    if (avx < 0)
        avx = enc_has_avx512();
    if (avx && e->kernel == 0) {    /* kernel 0 is lw.c's AVX-512 kernel where it runs */
        switch (e->mode) {
        case 0: return encode_rows(0, 1, e, frame, y0, y1, row16, off);
        case 1: return encode_rows(1, 1, e, frame, y0, y1, row16, off);
        default: return encode_rows(2, 1, e, frame, y0, y1, row16, off);
        }
    }
#endif
    switch (e->mode) {
    case 0: return encode_rows(0, 0, e, frame, y0, y1, row16, off);
    case 1: return encode_rows(1, 0, e, frame, y0, y1, row16, off);
    default: return encode_rows(2, 0, e, frame, y0, y1, row16, off);
    }
}

struct encode_job {
    const lw_encoding *e;
    const uint8_t *frame;
    int32_t band_rows;
    int failed;
};

static void encode_task(void *arg, int32_t band)
{
    struct encode_job *job = arg;
    int32_t y0 = band * job->band_rows;
    int32_t y1 = job->e->height - y0 < job->band_rows ? job->e->height : y0 + job->band_rows;
    const int32_t w = job->e->width;
    uint16_t *row16 = NULL;
    int32_t *off = NULL;
    if (job->e->mode) {
        row16 = malloc(sizeof *row16 * 3 * (size_t)w);
        off = malloc(sizeof *off * (size_t)w);
        if (!row16 || !off) {
            __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
            free(row16), free(off);
            return;
        }
        for (int32_t x = 0; x < w; x++)
            off[x] = 3 * x;
    }
    encode_band(job->e, job->frame, y0, y1, row16, off);
    free(row16), free(off);
}

int lw_encode(lw_pool *pool, const lw_encoding *e, int32_t band_rows, const uint8_t *frame)
{
    if (e->height <= 0 || e->width <= 0)
        return 0;
    if (band_rows < 1 || e->segment < 1 || e->chunk < 1 || !lw_kernel_supported(e->kernel))
        return -1;
    struct encode_job job = {e, frame, band_rows, 0};
    int32_t n_bands = (e->height + band_rows - 1) / band_rows;
    lw_pool_run(pool, encode_task, &job, n_bands);
    return job.failed ? -2 : 0;
}

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
