/* ledwarden fast path: frame correction fused with module scan.
 *
 * The text between the cdef markers is also what cffi is told (see
 * _build.py), so it holds plain declarations only: no macros, no includes.
 * Semantics are docs/spec/correction.md; the layout of the plan and of the
 * re-laid coefficients is described in docs/correction.md.
 */
#ifndef LEDWARDEN_LW_H
#define LEDWARDEN_LW_H

#include <stdint.h>

/* cdef-begin */

/* One module geometry (a module type at one rotation).  A module is emitted
 * as `scan` lines of `n` = width * groups pixels; pixel k of a line comes
 * from frame byte offset line_base + off[k], where line i's base is the
 * module's base + i * line_step.  off[k] = (k % groups) * group_step +
 * (k / groups) * dir, so rotated modules simply have negative steps. */
typedef struct {
    int32_t width;
    int32_t scan;
    int32_t groups;
    int32_t n;
    int64_t line_step;
    int64_t group_step;
    int32_t dir;
    int32_t reserved;
    const int32_t *off;
} lw_geom;

/* Everything one frame's work needs except the frame itself.  Modules are
 * listed in output order; module m reads the frame from byte mod_base[m],
 * writes out from element mod_out[m], reads re-laid coefficients from
 * element mod_coef[m] and its sums and peaks are entries 3m .. 3m + 2. */
typedef struct {
    int32_t mode;              /* 0 none, 1 gain, 2 matrix */
    int32_t n_modules;
    const lw_geom *geoms;
    const int32_t *mod_geom;
    const int64_t *mod_base;
    const int64_t *mod_out;
    const int64_t *mod_coef;
    const uint16_t *lut;       /* [3][256]; for mode 0 the gains are already applied */
    uint32_t gains[3];
    const int16_t *coef;       /* re-laid by lw_relayout; NULL for mode 0 */
    uint16_t *out;
    uint64_t *sums;
    uint16_t *peaks;
    /* Per-cabinet scale (docs/correction.md, an extension of the spec): NULL
     * for none, else scale[mod_cab[m]] (Q16, 0 .. 65536) turns the gains of
     * module m into (gains[c] * s + 32768) >> 16.  For mode 0 the kernel then
     * folds those into raw_lut, the curve before any gains, once per run of
     * modules with the same scale. */
    const int32_t *mod_cab;
    const uint32_t *scale;
    const uint16_t *raw_lut;
} lw_plan;

typedef struct lw_pool lw_pool;

/* Kernels: 0 is the best one this CPU runs; the others are for tests and
 * benchmarks.  lw_kernel_name returns NULL past the last one. */
const char *lw_kernel_name(int kernel);
int lw_kernel_supported(int kernel);
const char *lw_build_info(void);

lw_pool *lw_pool_new(int threads);
void lw_pool_free(lw_pool *pool);

/* The fused pass.  Band b is modules bands[b] .. bands[b + 1]; the pool's
 * threads (the caller's included; only the caller's when pool is NULL) take
 * bands in turn until all n_bands are done. */
int lw_process(lw_pool *pool, const lw_plan *plan, int kernel,
               const int32_t *bands, int32_t n_bands, const uint8_t *frame);

/* Coefficients (calib as int16[H][W][q]) into the order the kernel reads. */
void lw_relayout(const lw_plan *plan, const int16_t *calib, int32_t q, int16_t *coef);

/* Index of the first coefficient row (q = 3) or gain (q = 1) out of bounds. */
int64_t lw_first_bad(const int16_t *calib, int64_t rows, int32_t q);

/* correct() alone: frame order in, frame order out.  As in lw_plan, for
 * mode 0 the lut already has the gains applied. */
int lw_correct(int kernel, const uint8_t *frame, int32_t height, int32_t width,
               const uint16_t *lut, const uint32_t *gains, int32_t mode,
               const int16_t *calib, uint16_t *out);

/* module_scan() alone: a corrected frame into plan->out, sums and peaks. */
void lw_module_scan(const lw_plan *plan, const uint16_t *image);

/* The floor: copy srcs[0..nsrc) in order, the first dst_len bytes into dst
 * and the rest through a small cache-resident scratch buffer, so exactly the
 * bytes the pipeline reads are read and the bytes it writes are written
 * (when dst is longer than the sources, they are copied again to fill it). */
void lw_floor_copy(const uint8_t *const *srcs, const int64_t *lens, int32_t nsrc,
                   uint8_t *dst, int64_t dst_len);

/* Correction fused with the re-encode for cards with their own curve
 * (lw_encode.c; docs/correction.md, "Cards with their own curve").  Pixel
 * p = y * width + x goes to segment p / segment, chunk (p % segment) / chunk
 * = packet s * ceil(segment / chunk) + j, whose bytes start at first +
 * packet * stride; its byte i is table[corrected channel order[i]]. */
typedef struct {
    int32_t height;
    int32_t width;
    int32_t mode;              /* 0 none, 1 gain, 2 matrix, as lw_plan */
    int32_t order[3];
    const uint16_t *lut;       /* [3][256]; for mode 0 the gains are already applied */
    uint32_t gains[3];
    const int16_t *coef;       /* re-laid by lw_encode_relayout; NULL for mode 0 */
    const uint8_t *table;      /* [65536], and 3 readable bytes past the end (gathers) */
    const uint8_t *direct;     /* mode 0: table[lut[c][x]] as [3][256], 3 bytes more readable */
    int32_t kernel;            /* lw_correct's kernel; 0 on x86 with AVX-512 also gathers */
    int32_t reserved;
    int64_t segment;
    int64_t chunk;
    int64_t stride;
    int64_t first;
    uint8_t *out;
} lw_encoding;

/* Rows in bands of band_rows, taken by the pool's threads as lw_process's
 * bands are.  Returns -1 for a malformed encoding or a kernel this CPU
 * cannot run, -2 out of memory for a row's scratch, else 0. */
int lw_encode(lw_pool *pool, const lw_encoding *enc, int32_t band_rows, const uint8_t *frame);

/* Coefficients (calib as int16[H][W][q]) into the order lw_encode reads:
 * row by row, in blocks of 32 pixels, each block plane-major. */
void lw_encode_relayout(const int16_t *calib, int32_t height, int32_t width, int32_t q,
                        int16_t *coef);

/* cdef-end */

/* Internal: one row corrected from kernel-order coefficients (lw.c, for lw_encode). */
int lw_correct_row(int kernel, const uint8_t *row, int32_t width, const int32_t *off,
                   const uint16_t *lut, const uint32_t *gains, int32_t mode,
                   const int16_t *coef, uint16_t *out);

/* Internal: any banded job on the pool (lw_encode's); bands 0 .. n_bands - 1
 * are handed to task in turn, on the caller's thread only when pool is NULL. */
typedef void (*lw_task_fn)(void *arg, int32_t band);
void lw_pool_run(lw_pool *pool, lw_task_fn task, void *arg, int32_t n_bands);

/* Internal: what a kernel is given for one module. */
typedef struct {
    int32_t mode;
    const uint16_t *lut;
    uint32_t gains[3];
} lw_ctx;

typedef void (*lw_module_fn)(const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                             const int16_t *coef, uint16_t *out,
                             uint64_t *sums, uint16_t *peaks);

#define LW_BLOCK 32

void lw_module_portable(const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                        const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks);
#if defined(__x86_64__) && defined(__GNUC__)
#define LW_HAVE_AVX512 1
void lw_module_avx512(const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                      const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks);
#endif

#endif
