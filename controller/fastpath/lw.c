/* ledwarden fast path: the portable kernel, kernel dispatch, the thread pool,
 * coefficient re-layout and the checks, correct() and module_scan() alone.
 *
 * The portable kernel is plain C that GCC vectorises; on x86-64 it is built
 * three times by target_clones (baseline, x86-64-v3 = AVX2, x86-64-v4 =
 * AVX-512) and the loader picks one by CPUID, so the default build runs on
 * any x86-64 and its table lookups still vectorise as gathers where the CPU
 * has AVX2 (the baseline clone has no gathers and stays scalar).  On ARM64
 * NEON is baseline and one build suffices.  lw_avx512.c adds a hand-written
 * kernel for CPUs with AVX-512 BW and VBMI, chosen at run time.
 */
#include "lw.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LW_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define LW_CLONES
#endif

#ifndef LW_CFLAGS
#define LW_CFLAGS "unknown"
#endif

static inline uint32_t clamp16(int32_t a)
{
    return (uint32_t)(a < 0 ? 0 : a > 65535 ? 65535 : a);
}

/* ------------------------------------------------------------ portable kernel */

/* One block of up to LW_BLOCK pixels whose bytes are contiguous at `px`
 * (RGB, in scan order).  `mode` is a constant at every call, so each mode
 * gets its own loop with nothing but arithmetic and table lookups in it,
 * which GCC vectorises (the lookups become gathers). */
static inline __attribute__((always_inline)) void
block(const int mode, const uint32_t *restrict lut, const uint32_t *gains,
      const uint8_t *restrict px, int bl, const int16_t *restrict c,
      uint16_t *restrict out, uint32_t *restrict sum, uint32_t *restrict peak)
{
    const uint32_t ga = gains[0], gb = gains[1], gc = gains[2];
    uint32_t s0 = 0, s1 = 0, s2 = 0, p0 = peak[0], p1 = peak[1], p2 = peak[2];
    for (int k = 0; k < bl; k++) {
        uint32_t g0 = lut[px[3 * k]], g1 = lut[256 + px[3 * k + 1]], g2 = lut[512 + px[3 * k + 2]];
        uint32_t o0, o1, o2;
        if (mode == 0) {
            o0 = g0, o1 = g1, o2 = g2;
        } else {
            uint32_t a0, a1, a2;
            if (mode == 1) {
                a0 = clamp16(((int32_t)g0 * c[k] + 8192) >> 14);
                a1 = clamp16(((int32_t)g1 * c[bl + k] + 8192) >> 14);
                a2 = clamp16(((int32_t)g2 * c[2 * bl + k] + 8192) >> 14);
            } else {
                int32_t i0 = (int32_t)g0, i1 = (int32_t)g1, i2 = (int32_t)g2;
                a0 = clamp16((i0 * c[k] + i1 * c[bl + k] + i2 * c[2 * bl + k] + 8192) >> 14);
                a1 = clamp16((i0 * c[3 * bl + k] + i1 * c[4 * bl + k] + i2 * c[5 * bl + k] + 8192) >> 14);
                a2 = clamp16((i0 * c[6 * bl + k] + i1 * c[7 * bl + k] + i2 * c[8 * bl + k] + 8192) >> 14);
            }
            o0 = (a0 * ga + 32768u) >> 16;
            o1 = (a1 * gb + 32768u) >> 16;
            o2 = (a2 * gc + 32768u) >> 16;
        }
        out[3 * k] = (uint16_t)o0;
        out[3 * k + 1] = (uint16_t)o1;
        out[3 * k + 2] = (uint16_t)o2;
        s0 += o0, s1 += o1, s2 += o2;
        p0 = p0 > o0 ? p0 : o0;
        p1 = p1 > o1 ? p1 : o1;
        p2 = p2 > o2 ? p2 : o2;
    }
    sum[0] = s0, sum[1] = s1, sum[2] = s2;
    peak[0] = p0, peak[1] = p1, peak[2] = p2;
}

static inline __attribute__((always_inline)) void
module_mode(const int mode, const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
            const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks)
{
    const int q = mode == 2 ? 9 : mode == 1 ? 3 : 0;
    const int contiguous = g->groups == 1 && g->dir == 3;
    uint32_t lut[768];          /* 32-bit entries: what vector gathers load */
    for (int i = 0; i < 768; i++)
        lut[i] = ctx->lut[i];
    uint8_t staged[3 * LW_BLOCK];
    uint64_t s[3] = {0, 0, 0};
    uint32_t p[3] = {0, 0, 0};
    for (int i = 0; i < g->scan; i++) {
        const uint8_t *line = base + (int64_t)i * g->line_step;
        for (int k0 = 0; k0 < g->n; k0 += LW_BLOCK) {
            int bl = g->n - k0 < LW_BLOCK ? g->n - k0 : LW_BLOCK;
            const uint8_t *px = line + 3 * (int64_t)k0;
            if (!contiguous) {  /* into scan order first: a gather of 3-byte pixels */
                for (int k = 0; k < bl; k++)
                    memcpy(staged + 3 * k, line + g->off[k0 + k], 3);
                px = staged;
            }
            uint32_t bs[3];       /* a block's sums fit 32 bits: 32 * 65535 */
            block(mode, lut, ctx->gains, px, bl, coef, out, bs, p);
            for (int c = 0; c < 3; c++)
                s[c] += bs[c];
            coef += q * bl;
            out += 3 * bl;
        }
    }
    for (int c = 0; c < 3; c++) {
        sums[c] = s[c];
        peaks[c] = (uint16_t)p[c];
    }
}

LW_CLONES
void lw_module_portable(const lw_ctx *ctx, const uint8_t *base, const lw_geom *g,
                        const int16_t *coef, uint16_t *out, uint64_t *sums, uint16_t *peaks)
{
    switch (ctx->mode) {
    case 0: module_mode(0, ctx, base, g, coef, out, sums, peaks); break;
    case 1: module_mode(1, ctx, base, g, coef, out, sums, peaks); break;
    default: module_mode(2, ctx, base, g, coef, out, sums, peaks); break;
    }
}

/* ------------------------------------------------------------ kernels */

#ifdef LW_HAVE_AVX512
static int cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vbmi");
}
#endif

static const char *portable_name(void)
{
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return "portable/x86-64-v4";
    if (__builtin_cpu_supports("x86-64-v3"))
        return "portable/x86-64-v3";
    return "portable/x86-64";
#elif defined(__aarch64__)
    return "portable/neon";
#else
    return "portable";
#endif
}

/* Best first: index 0 is the default where supported. */
static lw_module_fn kernel_fn(int kernel)
{
#ifdef LW_HAVE_AVX512
    if (kernel == 0)
        return cpu_has_avx512() ? lw_module_avx512 : NULL;
    if (kernel == 1)
        return lw_module_portable;
#else
    if (kernel == 0)
        return lw_module_portable;
#endif
    return NULL;
}

const char *lw_kernel_name(int kernel)
{
#ifdef LW_HAVE_AVX512
    if (kernel == 0)
        return "avx512";
    if (kernel == 1)
        return portable_name();
#else
    if (kernel == 0)
        return portable_name();
#endif
    return NULL;
}

int lw_kernel_supported(int kernel)
{
    return kernel_fn(kernel) != NULL;
}

const char *lw_build_info(void)
{
#ifdef __VERSION__
    return "cc " __VERSION__ "; flags " LW_CFLAGS;
#else
    return "flags " LW_CFLAGS;
#endif
}

static void ctx_of(const lw_plan *plan, lw_ctx *ctx)
{
    ctx->mode = plan->mode;
    ctx->lut = plan->lut;
    memcpy(ctx->gains, plan->gains, sizeof ctx->gains);
}

/* The gains (and for mode 0 the folded curve) of modules under scale s: the
 * scale is one more factor in the per-channel gain, not a pass of its own. */
static void scale_ctx(const lw_plan *plan, uint32_t s, lw_ctx *ctx, uint16_t *folded)
{
    for (int c = 0; c < 3; c++)
        ctx->gains[c] = (uint32_t)(((uint64_t)plan->gains[c] * s + 32768u) >> 16);
    if (plan->mode == 0) {      /* 65535 * 65536 + 32768 < 2^32: 32-bit lanes, vectorised */
        for (int c = 0; c < 3; c++) {
            const uint32_t g = ctx->gains[c];
            const uint16_t *src = plan->raw_lut + 256 * c;
            uint16_t *dst = folded + 256 * c;
            for (int v = 0; v < 256; v++)
                dst[v] = (uint16_t)(((uint32_t)src[v] * g + 32768u) >> 16);
        }
        ctx->lut = folded;
    }
}

static void run_band(const lw_plan *plan, lw_module_fn fn, const uint8_t *frame, int m0, int m1)
{
    lw_ctx ctx;
    ctx_of(plan, &ctx);
    uint16_t folded[768];
    int64_t current = -1;       /* the scale ctx holds gains for; modules of a cabinet share it */
    for (int m = m0; m < m1; m++) {
        if (plan->scale && plan->scale[plan->mod_cab[m]] != current) {
            current = plan->scale[plan->mod_cab[m]];
            scale_ctx(plan, (uint32_t)current, &ctx, folded);
        }
        const int16_t *coef = plan->coef ? plan->coef + plan->mod_coef[m] : NULL;
        fn(&ctx, frame + plan->mod_base[m], &plan->geoms[plan->mod_geom[m]], coef,
           plan->out + plan->mod_out[m], plan->sums + 3 * (int64_t)m, plan->peaks + 3 * (int64_t)m);
    }
}

/* ------------------------------------------------------------ thread pool */

/* Workers sleep on a condition variable between frames; a frame bumps the
 * generation and every thread, the caller's included, takes bands (runs of
 * modules) from a shared counter until none are left.  Taking rather than
 * being assigned a band matters on a shared machine: a thread that is not
 * scheduled for a while simply takes fewer, and nobody waits for it.
 * Threads live as long as the pool (one per Pipeline), so a frame costs two
 * wake-ups, not thread creation. */
struct lw_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation;
    int pending, stop;
    struct job {
        const lw_plan *plan;
        lw_module_fn fn;
        const int32_t *bands;
        int32_t n_bands;
        int32_t next;           /* the next band to take, atomically */
        const uint8_t *frame;
        lw_task_fn task;        /* set by lw_pool_run: bands are task's, not modules */
        void *arg;
    } job;
};

static void take_bands(struct job *job)
{
    for (;;) {
        int32_t b = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (b >= job->n_bands)
            return;
        if (job->task) {
            job->task(job->arg, b);
            continue;
        }
        run_band(job->plan, job->fn, job->frame, job->bands[b], job->bands[b + 1]);
    }
}

static void *worker_main(void *arg)
{
    lw_pool *pool = arg;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (pool->generation == seen && !pool->stop)
            pthread_cond_wait(&pool->go, &pool->mu);
        if (pool->stop) {
            pthread_mutex_unlock(&pool->mu);
            return NULL;
        }
        seen = pool->generation;
        pthread_mutex_unlock(&pool->mu);

        take_bands(&pool->job);

        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->mu);
    }
}

lw_pool *lw_pool_new(int threads)
{
    if (threads < 1)
        return NULL;
    lw_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->threads = threads;
    pool->tids = calloc((size_t)threads, sizeof *pool->tids);
    if (!pool->tids) {
        free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->go, NULL);
    pthread_cond_init(&pool->done, NULL);
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&pool->tids[t], NULL, worker_main, pool) != 0) {
            pool->threads = t;    /* stop the ones that started; the caller reports it */
            lw_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void lw_pool_free(lw_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (int t = 1; t < pool->threads; t++)
        pthread_join(pool->tids[t], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->go);
    pthread_cond_destroy(&pool->done);
    free(pool->tids);
    free(pool);
}

/* Hand a banded job to the pool: the caller's thread takes bands too, and
 * returns when every band is done (the caller's alone without a pool). */
static void run_job(lw_pool *pool, const struct job *job)
{
    if (!pool || pool->threads == 1) {
        struct job own = *job;
        take_bands(&own);
        return;
    }
    pthread_mutex_lock(&pool->mu);
    pool->job = *job;
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);

    take_bands(&pool->job);

    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

int lw_process(lw_pool *pool, const lw_plan *plan, int kernel, const int32_t *bands,
               int32_t n_bands, const uint8_t *frame)
{
    lw_module_fn fn = kernel_fn(kernel);
    if (!fn)
        return -1;
    struct job job = {plan, fn, bands, n_bands, 0, frame};
    run_job(pool, &job);
    return 0;
}

/* The same hand-out for another banded job (lw_encode). */
void lw_pool_run(lw_pool *pool, lw_task_fn task, void *arg, int32_t n_bands)
{
    struct job job;
    memset(&job, 0, sizeof job);
    job.task = task, job.arg = arg, job.n_bands = n_bands;
    run_job(pool, &job);
}

/* ------------------------------------------------------------ coefficients */

/* Into kernel order: module by module, scan line by line, in blocks of
 * LW_BLOCK pixels, each block holding its q coefficient planes one after
 * the other (plane-major inside the block), so every vector load of one
 * coefficient for consecutive pixels is contiguous. */
void lw_relayout(const lw_plan *plan, const int16_t *calib, int32_t q, int16_t *coef)
{
    for (int m = 0; m < plan->n_modules; m++) {
        const lw_geom *g = &plan->geoms[plan->mod_geom[m]];
        int16_t *dst = coef + plan->mod_coef[m];
        for (int i = 0; i < g->scan; i++) {
            int64_t line = plan->mod_base[m] + (int64_t)i * g->line_step;
            for (int k0 = 0; k0 < g->n; k0 += LW_BLOCK) {
                int bl = g->n - k0 < LW_BLOCK ? g->n - k0 : LW_BLOCK;
                for (int k = 0; k < bl; k++) {
                    const int16_t *src = calib + (line + g->off[k0 + k]) / 3 * q;
                    for (int j = 0; j < q; j++)
                        dst[j * bl + k] = src[j];
                }
                dst += q * bl;
            }
        }
    }
}

int64_t lw_first_bad(const int16_t *calib, int64_t rows, int32_t q)
{
    if (q == 1) {
        for (int64_t r = 0; r < rows; r++)
            if (calib[r] < 0)
                return r;
        return -1;
    }
    const int64_t chunk = 4096;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t r1 = r0 + chunk < rows ? r0 + chunk : rows;
        int32_t worst = 0;          /* vectorisable: no early exit inside */
        for (int64_t r = r0; r < r1; r++) {
            const int16_t *c = calib + 3 * r;
            int32_t s = abs(c[0]) + abs(c[1]) + abs(c[2]);
            worst = s > worst ? s : worst;
        }
        if (worst > 32768)
            for (int64_t r = r0; r < r1; r++) {
                const int16_t *c = calib + 3 * r;
                if (abs(c[0]) + abs(c[1]) + abs(c[2]) > 32768)
                    return r;
            }
    }
    return -1;
}

/* ------------------------------------------------------------ correct, module_scan */

/* One row's coefficients from frame order into kernel order (see
 * lw_relayout); q is a constant at each call, so the copy unrolls. */
static inline __attribute__((always_inline)) void
relayout_row(const int q, const int16_t *restrict src, int32_t width, int16_t *restrict dst)
{
    for (int32_t k0 = 0; k0 < width; k0 += LW_BLOCK, src += q * LW_BLOCK) {
        int bl = width - k0 < LW_BLOCK ? width - k0 : LW_BLOCK;
        if (bl == LW_BLOCK) {
            for (int j = 0; j < q; j++)
                for (int k = 0; k < LW_BLOCK; k++)
                    dst[j * LW_BLOCK + k] = src[k * q + j];
        } else {
            for (int j = 0; j < q; j++)
                for (int k = 0; k < bl; k++)
                    dst[j * bl + k] = src[k * q + j];
        }
        dst += q * bl;
    }
}

int lw_correct(int kernel, const uint8_t *frame, int32_t height, int32_t width,
               const uint16_t *lut, const uint32_t *gains, int32_t mode,
               const int16_t *calib, uint16_t *out)
{
    lw_module_fn fn = kernel_fn(kernel);
    if (!fn)
        return -1;
    if (height <= 0 || width <= 0)
        return 0;
    const int q = mode == 2 ? 9 : mode == 1 ? 3 : 0;
    /* each row is a one-line module; its coefficients are re-laid per row */
    int32_t *off = malloc(sizeof *off * (size_t)width);
    int16_t *row = q ? malloc(sizeof *row * (size_t)width * q) : NULL;
    if (!off || (q && !row)) {
        free(off), free(row);
        return -2;
    }
    for (int32_t x = 0; x < width; x++)
        off[x] = 3 * x;
    lw_ctx ctx = {mode, lut, {gains[0], gains[1], gains[2]}};
    lw_geom g = {width, 1, 1, width, 0, 0, 3, 0, off};
    uint64_t sums[3];
    uint16_t peaks[3];
    for (int32_t y = 0; y < height; y++) {
        const int64_t first = (int64_t)y * width;
        if (q == 9)
            relayout_row(9, calib + first * 9, width, row);
        else if (q == 3)
            relayout_row(3, calib + first * 3, width, row);
        fn(&ctx, frame + 3 * first, &g, row, out + 3 * first, sums, peaks);
    }
    free(off), free(row);
    return 0;
}

/* One row, its coefficients already in kernel order (lw_encode_relayout):
 * lw_encode's correction step, without lw_correct's per-row re-lay. */
int lw_correct_row(int kernel, const uint8_t *row, int32_t width, const int32_t *off,
                   const uint16_t *lut, const uint32_t *gains, int32_t mode,
                   const int16_t *coef, uint16_t *out)
{
    lw_module_fn fn = kernel_fn(kernel);
    if (!fn)
        return -1;
    lw_ctx ctx = {mode, lut, {gains[0], gains[1], gains[2]}};
    lw_geom g = {width, 1, 1, width, 0, 0, 3, 0, off};
    uint64_t sums[3];
    uint16_t peaks[3];
    fn(&ctx, row, &g, coef, out, sums, peaks);
    return 0;
}

void lw_module_scan(const lw_plan *plan, const uint16_t *image)
{
    for (int m = 0; m < plan->n_modules; m++) {
        const lw_geom *g = &plan->geoms[plan->mod_geom[m]];
        uint16_t *out = plan->out + plan->mod_out[m];
        uint64_t s0 = 0, s1 = 0, s2 = 0;
        uint16_t p0 = 0, p1 = 0, p2 = 0;
        /* byte offsets into an RGB8 frame are element offsets into an RGB16 one */
        for (int i = 0; i < g->scan; i++) {
            const uint16_t *line = image + plan->mod_base[m] + (int64_t)i * g->line_step;
            for (int k = 0; k < g->n; k++) {
                const uint16_t *px = line + g->off[k];
                uint16_t v0 = px[0], v1 = px[1], v2 = px[2];
                out[0] = v0, out[1] = v1, out[2] = v2;
                out += 3;
                s0 += v0, s1 += v1, s2 += v2;
                p0 = v0 > p0 ? v0 : p0;
                p1 = v1 > p1 ? v1 : p1;
                p2 = v2 > p2 ? v2 : p2;
            }
        }
        uint64_t *sums = plan->sums + 3 * (int64_t)m;
        uint16_t *peaks = plan->peaks + 3 * (int64_t)m;
        sums[0] = s0, sums[1] = s1, sums[2] = s2;
        peaks[0] = p0, peaks[1] = p1, peaks[2] = p2;
    }
}

/* ------------------------------------------------------------ the floor */

void lw_floor_copy(const uint8_t *const *srcs, const int64_t *lens, int32_t nsrc,
                   uint8_t *dst, int64_t dst_len)
{
    static _Thread_local uint8_t scratch[16384] __attribute__((aligned(64)));
    int64_t written = 0, total = 0;
    for (int32_t s = 0; s < nsrc; s++)
        total += lens[s];
    if (total == 0)
        return;
    /* sources in order, round again while dst is not yet full (it can need
     * more bytes than are read: without calibration 3 bytes in make 6 out) */
    for (int first = 1; first || written < dst_len; first = 0) {
        for (int32_t s = 0; s < nsrc; s++) {
            const uint8_t *p = srcs[s];
            int64_t left = lens[s];
            if (written < dst_len) {
                int64_t n = dst_len - written < left ? dst_len - written : left;
                memcpy(dst + written, p, (size_t)n);
                written += n, p += n, left -= n;
            }
            if (!first)
                continue;
            for (; left > 0; left -= (int64_t)sizeof scratch, p += sizeof scratch) {
                memcpy(scratch, p, (size_t)(left < (int64_t)sizeof scratch ? left : (int64_t)sizeof scratch));
                __asm__ volatile("" : : "r"(scratch) : "memory");   /* the copy is the point: keep it */
            }
        }
    }
}
