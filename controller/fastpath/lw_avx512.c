/* The AVX-512 kernel (BW + VBMI: Ice Lake and later, Zen 4 and later).
 *
 * One call does one module: `scan` lines of `n` pixels, in blocks of 32
 * pixels, entirely in registers from the frame bytes to the card buffer.
 * Why hand-written rather than left to the vectoriser: the portable kernel,
 * vectorised by GCC, spends most of its time in gathers (the three LUT
 * lookups and the frame read in scan order); here
 *   - the frame is read with two masked loads per block and put into scan
 *     order and split into channels by byte permutes (vpermt2b), for modules
 *     with one or two rows per scan line (every HUB75 panel) at 0 or 180
 *     degrees; other geometries gather into a small buffer first;
 *   - the 256-entry LUTs are looked up with four vpermt2w and three blends
 *     per 32 pixels instead of gathers;
 *   - the gain and brightness steps run on 16-bit lanes (mulhi/mullo), the
 *     matrix on 32-bit lanes because its sum needs 32 bits, narrowed back
 *     with the clamp for free (packus);
 *   - the coefficient stream is prefetched a few blocks ahead, the frame
 *     rows of a later scan line a couple of lines ahead;
 *   - module sums come from vpmaddwd on (o - 32768), peaks from vpmaxuw,
 *     both on the lanes already in registers.
 * Masked loads never fault on masked-off bytes, so blocks at the edge of
 * the frame are safe without a scalar tail.
 */
#include "lw.h"

#ifdef LW_HAVE_AVX512
#include <immintrin.h>
#include <string.h>

#define LW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi")))
#define LW_INLINE static inline __attribute__((always_inline)) LW_TARGET

#ifndef LW_PREFETCH_BLOCKS
#define LW_PREFETCH_BLOCKS 8
#endif
#ifndef LW_PREFETCH_LINES
#define LW_PREFETCH_LINES 2
#endif

_Static_assert(LW_BLOCK == 32, "one block is one 32-lane vector of 16-bit values");

enum { STAGE_FWD1, STAGE_REV1, STAGE_FWD2, STAGE_REV2, STAGE_ANY };

/* Byte permutes that put a block's 32 pixels in scan order, one channel per
 * vector, each byte in the low half of a 16-bit lane (the high half is
 * zeroed by the mask).  Source bytes 0..63 are the first load, 64..127 the
 * second.
 *
 * Then the way back: element e of the 96 output words of a block is channel
 * e % 3 of pixel e / 3, gathered first from R and G by a two-source permute,
 * then from B merged by mask. */
static struct {
    uint8_t stage[4][3][64];
    uint16_t rg[3][32], b[3][32];
    uint32_t bmask[3];
} tables;

__attribute__((constructor)) static void init_tables(void)
{
    for (int t = 0; t < 32; t++) {
        for (int c = 0; c < 3; c++) {
            tables.stage[STAGE_FWD1][c][2 * t] = (uint8_t)(3 * t + c);
            tables.stage[STAGE_REV1][c][2 * t] = (uint8_t)(3 * (31 - t) + c);
            tables.stage[STAGE_FWD2][c][2 * t] = (uint8_t)((t & 1) * 64 + 3 * (t >> 1) + c);
            tables.stage[STAGE_REV2][c][2 * t] = (uint8_t)((t & 1) * 64 + 3 * (15 - (t >> 1)) + c);
        }
    }
    for (int z = 0; z < 3; z++) {
        for (int t = 0; t < 32; t++) {
            int e = 32 * z + t, px = e / 3, c = e % 3;
            tables.rg[z][t] = (uint16_t)(c == 1 ? 32 + px : px);
            tables.b[z][t] = (uint16_t)px;
            if (c == 2)
                tables.bmask[z] |= 1u << t;
        }
    }
}

LW_INLINE __mmask64 bytes_from(int start)      /* bytes start..63 of a load */
{
    return start >= 64 ? 0 : start <= 0 ? ~(__mmask64)0 : ~(__mmask64)0 << start;
}

LW_INLINE __mmask64 bytes_below(int end)       /* bytes 0..end-1 of a load */
{
    return end >= 64 ? ~(__mmask64)0 : end <= 0 ? 0 : ((__mmask64)1 << end) - 1;
}

/* Pointer arithmetic that may step before the frame: only masked-off bytes
 * are ever there, so the address is formed as an integer. */
LW_INLINE const uint8_t *at(const uint8_t *p, int64_t delta)
{
    return (const uint8_t *)((uintptr_t)p + (uintptr_t)delta);
}

/* The block's pixels k0 .. k0 + bl - 1 of a line, as three vectors of 16-bit
 * channel values 0..255 (the LUT indices). */
LW_INLINE void stage(int kind, const uint8_t *line, const lw_geom *g, int k0, int bl,
                     uint8_t *buf, __m512i ix[3])
{
    __m512i lo, hi;
    const uint8_t (*idx)[64];
    switch (kind) {
    case STAGE_FWD1: {
        const uint8_t *p = line + 3 * (int64_t)k0;
        lo = _mm512_maskz_loadu_epi8(bytes_below(3 * bl), p);
        hi = _mm512_maskz_loadu_epi8(bytes_below(3 * bl - 64), at(p, 64));
        idx = tables.stage[STAGE_FWD1];
        break;
    }
    case STAGE_REV1: {
        const uint8_t *p = at(line, -3 * (int64_t)(k0 + 31));
        int start = 3 * (32 - bl);
        lo = _mm512_maskz_loadu_epi8(bytes_from(start), p);
        hi = _mm512_maskz_loadu_epi8(bytes_from(start - 64) & bytes_below(32), at(p, 64));
        idx = tables.stage[STAGE_REV1];
        break;
    }
    case STAGE_FWD2: {
        const uint8_t *p = line + 3 * (int64_t)(k0 / 2);
        __mmask64 m = bytes_below(3 * (bl / 2));
        lo = _mm512_maskz_loadu_epi8(m, p);
        hi = _mm512_maskz_loadu_epi8(m, at(p, g->group_step));
        idx = tables.stage[STAGE_FWD2];
        break;
    }
    case STAGE_REV2: {
        const uint8_t *p = at(line, -3 * (int64_t)(k0 / 2 + 15));
        __mmask64 m = bytes_from(3 * (16 - bl / 2)) & bytes_below(48);
        lo = _mm512_maskz_loadu_epi8(m, p);
        hi = _mm512_maskz_loadu_epi8(m, at(p, g->group_step));
        idx = tables.stage[STAGE_REV2];
        break;
    }
    default: {
        const int32_t *off = g->off + k0;
        for (int t = 0; t < bl; t++)
            memcpy(buf + 3 * t, line + off[t], 3);
        lo = _mm512_loadu_si512(buf);
        hi = _mm512_loadu_si512(buf + 64);
        idx = tables.stage[STAGE_FWD1];
        break;
    }
    }
    const __mmask64 even = 0x5555555555555555ull;
    for (int c = 0; c < 3; c++)
        ix[c] = _mm512_maskz_permutex2var_epi8(even, lo, _mm512_loadu_si512(idx[c]), hi);
}

/* lut[ix] for 32 indices 0..255: a 64-entry permute per quarter, then
 * blends on bits 6 and 7 of the index. */
LW_INLINE __m512i lookup(__m512i ix, const __m512i t[8])
{
    __m512i q0 = _mm512_permutex2var_epi16(t[0], ix, t[1]);
    __m512i q1 = _mm512_permutex2var_epi16(t[2], ix, t[3]);
    __m512i q2 = _mm512_permutex2var_epi16(t[4], ix, t[5]);
    __m512i q3 = _mm512_permutex2var_epi16(t[6], ix, t[7]);
    __mmask32 b6 = _mm512_test_epi16_mask(ix, _mm512_set1_epi16(64));
    __mmask32 b7 = _mm512_test_epi16_mask(ix, _mm512_set1_epi16(128));
    return _mm512_mask_blend_epi16(b7, _mm512_mask_blend_epi16(b6, q0, q1),
                                   _mm512_mask_blend_epi16(b6, q2, q3));
}

/* (a * gain + 32768) >> 16 for a <= 65535, gain <= 65536, on 16-bit lanes:
 * the high half of the product plus the rounding bit of the low half; a
 * gain of exactly 65536 (low half 0) passes a through via `full`. */
LW_INLINE __m512i scale(__m512i a, __m512i gain16, __m512i full)
{
    __m512i hi = _mm512_mulhi_epu16(a, gain16);
    __m512i round = _mm512_srli_epi16(_mm512_mullo_epi16(a, gain16), 15);
    return _mm512_add_epi16(_mm512_add_epi16(hi, round), _mm512_and_si512(a, full));
}

/* Gain calibration: min((g * K + 8192) >> 14, 65535) with g * K split into
 * 16-bit halves: (hi << 2) + ((lo >> 13) + 1 >> 1), saturating. */
LW_INLINE __m512i gain_calib(__m512i g, __m512i k)
{
    __m512i hi = _mm512_mulhi_epu16(g, k);
    __m512i lo = _mm512_mullo_epi16(g, k);
    __m512i r = _mm512_srli_epi16(_mm512_add_epi16(_mm512_srli_epi16(lo, 13), _mm512_set1_epi16(1)), 1);
    __m512i h2 = _mm512_adds_epu16(hi, hi);
    return _mm512_adds_epu16(_mm512_adds_epu16(h2, h2), r);
}

LW_INLINE __m512i widen_half(__m512i v, int half)
{
    return _mm512_cvtepu16_epi32(half ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v));
}

LW_INLINE __m512i coef_half(const int16_t *plane, __mmask16 m)
{
    return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, plane));
}

LW_INLINE void matrix_calib(const __m512i g[3], const int16_t *c, int bl, __m512i a[3])
{
    __m512i sum[3][2];
    for (int half = 0; half < 2; half++) {
        int valid = bl - 16 * half;
        __mmask16 m = valid >= 16 ? (__mmask16)0xFFFF : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1);
        __m512i g0 = widen_half(g[0], half), g1 = widen_half(g[1], half), g2 = widen_half(g[2], half);
        for (int ch = 0; ch < 3; ch++) {
            const int16_t *row = c + (3 * ch) * bl + 16 * half;
            __m512i s = _mm512_mullo_epi32(g0, coef_half(row, m));
            s = _mm512_add_epi32(s, _mm512_mullo_epi32(g1, coef_half(row + bl, m)));
            s = _mm512_add_epi32(s, _mm512_mullo_epi32(g2, coef_half(row + 2 * bl, m)));
            sum[ch][half] = _mm512_srai_epi32(_mm512_add_epi32(s, _mm512_set1_epi32(8192)), 14);
        }
    }
    /* packus clamps to 0..65535 as it narrows, but interleaves the halves by
     * 128-bit lane: the qword permute puts the pixels back in order */
    const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
    for (int ch = 0; ch < 3; ch++)
        a[ch] = _mm512_permutexvar_epi64(order, _mm512_packus_epi32(sum[ch][0], sum[ch][1]));
}

LW_INLINE void flush(__m512i acc[3], __m512i peak[3], int64_t count, uint64_t *sums, uint16_t *peaks)
{
    for (int c = 0; c < 3; c++) {
        __m512i wide = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc[c])),
                                        _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc[c], 1)));
        sums[c] += (uint64_t)(_mm512_reduce_add_epi64(wide) + 32768 * count);
        __m256i m = _mm256_max_epu16(_mm512_castsi512_si256(peak[c]), _mm512_extracti64x4_epi64(peak[c], 1));
        __m128i m2 = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
        /* max = ~min(~x): minpos finds the minimum of eight u16 */
        __m128i inv = _mm_minpos_epu16(_mm_xor_si128(m2, _mm_set1_epi16(-1)));
        uint16_t top = (uint16_t)~(uint16_t)_mm_extract_epi16(inv, 0);
        if (top > peaks[c])
            peaks[c] = top;
        acc[c] = _mm512_setzero_si512();
        peak[c] = _mm512_setzero_si512();
    }
}

LW_INLINE void module_mode(const int mode, const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                           const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks)
{
    __m512i t[3][8];
    for (int c = 0; c < 3; c++)
        for (int q = 0; q < 8; q++)
            t[c][q] = _mm512_loadu_si512(ctx->lut + 256 * c + 32 * q);
    __m512i gain16[3], full[3];
    for (int c = 0; c < 3; c++) {
        gain16[c] = _mm512_set1_epi16((short)(ctx->gains[c] & 0xFFFF));
        full[c] = _mm512_set1_epi16(ctx->gains[c] >= 65536 ? -1 : 0);
    }
    __m512i it_rg[3], it_b[3];
    for (int z = 0; z < 3; z++) {
        it_rg[z] = _mm512_loadu_si512(tables.rg[z]);
        it_b[z] = _mm512_loadu_si512(tables.b[z]);
    }
    const __m512i bias = _mm512_set1_epi16((short)0x8000), ones = _mm512_set1_epi16(1);
    const int q = mode == 2 ? 9 : mode == 1 ? 3 : 0;
    int kind = STAGE_ANY;
    if (g->groups == 1 && g->dir == 3)
        kind = STAGE_FWD1;
    else if (g->groups == 1 && g->dir == -3)
        kind = STAGE_REV1;
    else if (g->groups == 2 && g->dir == 3)
        kind = STAGE_FWD2;
    else if (g->groups == 2 && g->dir == -3)
        kind = STAGE_REV2;
    uint8_t buf[128] __attribute__((aligned(64)));
    memset(buf, 0, sizeof buf);

    __m512i acc[3], peak[3];
    for (int c = 0; c < 3; c++) {
        acc[c] = peak[c] = _mm512_setzero_si512();
        sums[c] = 0;
        peaks[c] = 0;
    }
    int64_t count = 0;
    const int n = g->n;
    const int64_t span = 3 * (int64_t)g->width;   /* frame bytes of one row of a line */
    for (int i = 0; i < g->scan; i++) {
        const uint8_t *line = at(base, (int64_t)i * g->line_step);
        if (i + LW_PREFETCH_LINES < g->scan) {        /* a later line's rows, which the */
            const uint8_t *next = at(line, LW_PREFETCH_LINES * g->line_step);   /* hardware */
            if (g->dir < 0)                                  /* prefetcher cannot guess */
                next = at(next, 3 - span);
            for (int j = 0; j < g->groups && j < 2; j++)
                for (int64_t b = 0; b < span + 63; b += 64)
                    _mm_prefetch((const char *)at(next, j * g->group_step + b), _MM_HINT_T0);
        }
        for (int k0 = 0; k0 < n; k0 += 32) {
            const int bl = n - k0 < 32 ? n - k0 : 32;
            const __mmask32 m = bl == 32 ? ~(__mmask32)0 : (((__mmask32)1 << bl) - 1);
            __m512i ix[3], o[3];
            if (q) {                /* the coefficient stream, a few blocks ahead */
                const char *ahead = (const char *)at((const uint8_t *)coef,
                                                     2 * q * 32 * LW_PREFETCH_BLOCKS);
                for (int b = 0; b < q * 64; b += 64)
                    _mm_prefetch(ahead + b, _MM_HINT_T0);
            }
            stage(kind, line, g, k0, bl, buf, ix);
            if (mode == 0) {
                for (int c = 0; c < 3; c++)
                    o[c] = lookup(ix[c], t[c]);
            } else if (mode == 1) {
                for (int c = 0; c < 3; c++) {
                    __m512i k = _mm512_maskz_loadu_epi16(m, coef + c * bl);
                    o[c] = scale(gain_calib(lookup(ix[c], t[c]), k), gain16[c], full[c]);
                }
            } else {
                __m512i gv[3], a[3];
                for (int c = 0; c < 3; c++)
                    gv[c] = lookup(ix[c], t[c]);
                matrix_calib(gv, coef, bl, a);
                for (int c = 0; c < 3; c++)
                    o[c] = scale(a[c], gain16[c], full[c]);
            }
            coef += q * bl;
            for (int c = 0; c < 3; c++) {
                acc[c] = _mm512_add_epi32(acc[c], _mm512_madd_epi16(_mm512_maskz_sub_epi16(m, o[c], bias), ones));
                peak[c] = _mm512_mask_max_epu16(peak[c], m, peak[c], o[c]);
            }
            for (int z = 0; z < 3; z++) {
                __m512i v = _mm512_permutex2var_epi16(o[0], it_rg[z], o[1]);
                v = _mm512_mask_permutexvar_epi16(v, tables.bmask[z], it_b[z], o[2]);
                int valid = 3 * bl - 32 * z;
                if (valid >= 32 && !((uintptr_t)(out + 32 * z) & 63))
                    _mm512_stream_si512((void *)(out + 32 * z), v);   /* no read for ownership */
                else if (valid >= 32)
                    _mm512_storeu_si512(out + 32 * z, v);
                else if (valid > 0)
                    _mm512_mask_storeu_epi16(out + 32 * z, ((__mmask32)1 << valid) - 1, v);
            }
            out += 3 * bl;
            count += bl;
            if (count >= (1 << 19)) {           /* int32 lanes: flush long before 2^31 */
                flush(acc, peak, count, sums, peaks);
                count = 0;
            }
        }
    }
    flush(acc, peak, count, sums, peaks);
    _mm_sfence();       /* streamed stores visible before the band reports done */
}

LW_TARGET
void lw_module_avx512(const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                      const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks)
{
    switch (ctx->mode) {
    case 0: module_mode(0, ctx, base, g, coef, out, sums, peaks); break;
    case 1: module_mode(1, ctx, base, g, coef, out, sums, peaks); break;
    default: module_mode(2, ctx, base, g, coef, out, sums, peaks); break;
    }
}

#endif
