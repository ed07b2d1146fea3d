/* ledwarden fast path on another architecture: run lw.c on cases from a file.
 *
 * Why a C driver: the real board is ARM64, and running the Python side under
 * qemu-user would mean a whole ARM64 Python with NumPy and cffi.  The C is
 * the part whose arithmetic, vectorisation and threading differ between
 * architectures, so this program calls it exactly as the cffi wrappers do
 * (controller/fastpath/_cffi.py) on inputs prepared on the host, and writes
 * the raw outputs back.  tests/arm/test_arm_bit_exact.py prepares the cases
 * with the same plan builder and input generators the x86 tests use, runs
 * this under qemu-aarch64, and compares every byte with the NumPy reference.
 *
 *   lw_driver CASES OUT
 *
 * Both files are little-endian (as x86-64 and ARM64 are).  CASES is the
 * magic "LWARMv1\0", a u32 case count, then per case a u32 kind:
 *
 *   1 pipeline  i32 mode threads frames n_geoms n_modules n_bands q,
 *               i64 pixels frame_bytes calib_len, geometries, plan arrays,
 *               u16 lut[768], u32 gains[3], i16 calib[calib_len],
 *               i32 bands[n_bands + 1], u8 frame[frames][frame_bytes]
 *               -> per frame: u16 out[3 * pixels], u64 sums[3M], u16 peaks[3M]
 *   2 correct   i32 mode h w, i64 calib_len, u16 lut[768], u32 gains[3],
 *               i16 calib[calib_len], u8 frame[h * w * 3]
 *               -> i32 status, u16 out[h * w * 3]
 *   3 scan      i32 n_geoms n_modules, i64 pixels image_len, geometries,
 *               plan arrays (no coefficient offsets), u16 image[image_len]
 *               -> u16 out[3 * pixels], u64 sums[3M], u16 peaks[3M]
 *   4 first_bad i32 q, i64 rows, i16 calib[rows * q] -> i64 index
 *   5 scaled    as 1, then i32 n_cabinets, i32 mod_cab[n_modules], u16 raw_lut[768],
 *               and each frame preceded by u32 scale[n_cabinets] (Q16 per cabinet)
 *               -> as 1
 *   6 encode    i32 mode h w threads order[3], i64 segment chunk stride first
 *               calib_len out_len band_rows, u16 lut[768], u32 gains[3],
 *               i16 calib[calib_len], u8 table[65536], u8 direct[768],
 *               u8 frame[h * w * 3] -> i32 status, u8 out[out_len] (0xA5 where
 *               the encoder writes nothing)
 *
 * A geometry is i32 width scan groups n dir, i64 line_step group_step,
 * i32 off[n].  OUT starts with the default kernel's name and the build info
 * (each a u32 length and the bytes), then the outputs in case order.
 * Exit status: 0 done, 1 usage or I/O, 2 malformed input, 3 kernel refused.
 */
#include "lw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *p, *end;
} cursor;

static void die(int status, const char *what)
{
    fprintf(stderr, "lw_driver: %s\n", what);
    exit(status);
}

/* A fresh, 64-byte aligned copy of the next n bytes (the file has no alignment). */
static void *take(cursor *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        die(2, "case file ends early");
    void *out = aligned_alloc(64, n ? (n + 63) / 64 * 64 : 64);
    if (!out)
        die(1, "out of memory");
    memcpy(out, c->p, n);
    c->p += n;
    return out;
}

static int32_t i32(cursor *c)
{
    int32_t v;
    void *b = take(c, sizeof v);
    memcpy(&v, b, sizeof v);
    free(b);
    return v;
}

static int64_t i64(cursor *c)
{
    int64_t v;
    void *b = take(c, sizeof v);
    memcpy(&v, b, sizeof v);
    free(b);
    return v;
}

static void *alloc(size_t n)
{
    void *out = aligned_alloc(64, n ? (n + 63) / 64 * 64 : 64);
    if (!out)
        die(1, "out of memory");
    return out;
}

static void put(FILE *f, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, f) != n)
        die(1, "cannot write the output file");
}

static void put_string(FILE *f, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    put(f, &n, sizeof n);
    put(f, s, n);
}

/* Geometries and the per-module arrays, into plan (with_coef: the coefficient offsets too). */
static void read_plan(cursor *c, lw_plan *plan, int n_geoms, int n_modules, int with_coef)
{
    if (n_geoms < 1 || n_modules < 0)
        die(2, "bad plan sizes");
    lw_geom *geoms = alloc(sizeof *geoms * (size_t)n_geoms);
    for (int g = 0; g < n_geoms; g++) {
        geoms[g].width = i32(c);
        geoms[g].scan = i32(c);
        geoms[g].groups = i32(c);
        geoms[g].n = i32(c);
        geoms[g].dir = i32(c);
        geoms[g].reserved = 0;
        geoms[g].line_step = i64(c);
        geoms[g].group_step = i64(c);
        if (geoms[g].n < 0)
            die(2, "bad geometry");
        geoms[g].off = take(c, sizeof(int32_t) * (size_t)geoms[g].n);
    }
    plan->geoms = geoms;
    plan->n_modules = n_modules;
    plan->mod_geom = take(c, sizeof(int32_t) * (size_t)n_modules);
    plan->mod_base = take(c, sizeof(int64_t) * (size_t)n_modules);
    plan->mod_out = take(c, sizeof(int64_t) * (size_t)n_modules);
    plan->mod_coef = with_coef ? take(c, sizeof(int64_t) * (size_t)n_modules) : NULL;
}

static void outputs(FILE *f, const lw_plan *plan, int64_t pixels)
{
    put(f, plan->out, sizeof(uint16_t) * 3 * (size_t)pixels);
    put(f, plan->sums, sizeof(uint64_t) * 3 * (size_t)plan->n_modules);
    put(f, plan->peaks, sizeof(uint16_t) * 3 * (size_t)plan->n_modules);
}

static void pipeline(cursor *c, FILE *f, int scaled)
{
    lw_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.mode = i32(c);
    int threads = i32(c), frames = i32(c), n_geoms = i32(c), n_modules = i32(c);
    int n_bands = i32(c), q = i32(c);
    int64_t pixels = i64(c), frame_bytes = i64(c), calib_len = i64(c);
    if (threads < 1 || frames < 1 || n_bands < 1 || pixels < 0 || frame_bytes < 0 || calib_len < 0)
        die(2, "bad pipeline sizes");
    read_plan(c, &plan, n_geoms, n_modules, 1);
    const uint16_t *lut = take(c, sizeof(uint16_t) * 768);
    plan.lut = lut;
    uint32_t *gains = take(c, sizeof(uint32_t) * 3);
    memcpy(plan.gains, gains, sizeof plan.gains);
    const int16_t *calib = take(c, sizeof(int16_t) * (size_t)calib_len);
    if (q) {        /* as _cffi.Pipeline does: re-lay the coefficients once */
        int16_t *coef = alloc(sizeof(int16_t) * (size_t)pixels * (size_t)q);
        lw_relayout(&plan, calib, q, coef);
        plan.coef = coef;
    }
    const int32_t *bands = take(c, sizeof(int32_t) * ((size_t)n_bands + 1));
    int32_t n_cab = 0;
    uint32_t *scale = NULL;
    if (scaled) {   /* as _cffi.Pipeline wires the per-cabinet scale */
        n_cab = i32(c);
        if (n_cab < 0)
            die(2, "bad cabinet count");
        plan.mod_cab = take(c, sizeof(int32_t) * (size_t)n_modules);
        plan.raw_lut = take(c, sizeof(uint16_t) * 768);
        scale = alloc(sizeof(uint32_t) * (size_t)n_cab);
    }
    plan.out = alloc(sizeof(uint16_t) * 3 * (size_t)pixels);
    plan.sums = alloc(sizeof(uint64_t) * 3 * (size_t)n_modules);
    plan.peaks = alloc(sizeof(uint16_t) * 3 * (size_t)n_modules);
    lw_pool *pool = threads > 1 ? lw_pool_new(threads) : NULL;
    if (threads > 1 && !pool)
        die(3, "could not start the worker threads");
    for (int k = 0; k < frames; k++) {     /* one pool for every frame, as a Pipeline keeps it */
        if (scaled) {
            uint32_t *next = take(c, sizeof(uint32_t) * (size_t)n_cab);
            memcpy(scale, next, sizeof(uint32_t) * (size_t)n_cab);
            free(next);
            plan.scale = scale;
        }
        const uint8_t *frame = take(c, (size_t)frame_bytes);
        if (lw_process(pool, &plan, 0, bands, n_bands, frame) != 0)
            die(3, "lw_process refused the default kernel");
        outputs(f, &plan, pixels);
        free((void *)frame);
    }
    lw_pool_free(pool);
}

static void correct(cursor *c, FILE *f)
{
    int32_t mode = i32(c), h = i32(c), w = i32(c);
    int64_t calib_len = i64(c);
    if (h < 0 || w < 0 || calib_len < 0)
        die(2, "bad correct sizes");
    const uint16_t *lut = take(c, sizeof(uint16_t) * 768);
    const uint32_t *gains = take(c, sizeof(uint32_t) * 3);
    const int16_t *calib = take(c, sizeof(int16_t) * (size_t)calib_len);
    size_t n = (size_t)h * (size_t)w * 3;
    const uint8_t *frame = take(c, n);
    uint16_t *out = alloc(sizeof(uint16_t) * n);
    int32_t status = lw_correct(0, frame, h, w, lut, gains, mode, calib_len ? calib : NULL, out);
    put(f, &status, sizeof status);
    put(f, out, sizeof(uint16_t) * n);
}

static void scan(cursor *c, FILE *f)
{
    lw_plan plan;
    memset(&plan, 0, sizeof plan);
    int n_geoms = i32(c), n_modules = i32(c);
    int64_t pixels = i64(c), image_len = i64(c);
    if (pixels < 0 || image_len < 0)
        die(2, "bad scan sizes");
    read_plan(c, &plan, n_geoms, n_modules, 0);
    const uint16_t *image = take(c, sizeof(uint16_t) * (size_t)image_len);
    plan.out = alloc(sizeof(uint16_t) * 3 * (size_t)pixels);
    plan.sums = alloc(sizeof(uint64_t) * 3 * (size_t)n_modules);
    plan.peaks = alloc(sizeof(uint16_t) * 3 * (size_t)n_modules);
    lw_module_scan(&plan, image);
    outputs(f, &plan, pixels);
}

static void first_bad(cursor *c, FILE *f)
{
    int32_t q = i32(c);
    int64_t rows = i64(c);
    if ((q != 1 && q != 3) || rows < 0)
        die(2, "bad first_bad sizes");
    const int16_t *calib = take(c, sizeof(int16_t) * (size_t)(rows * q));
    int64_t index = lw_first_bad(calib, rows, q);
    put(f, &index, sizeof index);
}

static void encode(cursor *c, FILE *f)
{
    lw_encoding e;
    memset(&e, 0, sizeof e);
    e.mode = i32(c), e.height = i32(c), e.width = i32(c);
    int threads = i32(c);
    for (int i = 0; i < 3; i++)
        e.order[i] = i32(c);
    e.segment = i64(c), e.chunk = i64(c), e.stride = i64(c), e.first = i64(c);
    int64_t calib_len = i64(c), out_len = i64(c), band_rows = i64(c);
    if (e.height < 0 || e.width < 0 || threads < 1 || calib_len < 0 || out_len < 0
        || band_rows < 1 || band_rows > 1 << 30)
        die(2, "bad encode sizes");
    e.lut = take(c, sizeof(uint16_t) * 768);
    const uint32_t *gains = take(c, sizeof(uint32_t) * 3);
    memcpy(e.gains, gains, sizeof e.gains);
    const int16_t *calib = take(c, sizeof(int16_t) * (size_t)calib_len);
    uint8_t *table = alloc(65536 + 64), *direct = alloc(768 + 64);   /* as lw.h asks */
    const uint8_t *t = take(c, 65536), *d = take(c, 768);
    memcpy(table, t, 65536), memcpy(direct, d, 768);
    e.table = table;
    const uint8_t *frame = take(c, (size_t)e.height * (size_t)e.width * 3);
    int q = e.mode == 2 ? 9 : e.mode == 1 ? 3 : 0;
    if (q) {        /* as _cffi.Encoder does: re-lay the coefficients once */
        int16_t *coef = alloc(sizeof(int16_t) * (size_t)calib_len);
        lw_encode_relayout(calib, e.height, e.width, q, coef);
        e.coef = coef;
    } else {
        e.direct = direct;
    }
    uint8_t *out = alloc((size_t)out_len);
    memset(out, 0xA5, (size_t)out_len);
    e.out = out;
    lw_pool *pool = threads > 1 ? lw_pool_new(threads) : NULL;
    if (threads > 1 && !pool)
        die(3, "could not start the worker threads");
    int32_t status = lw_encode(pool, &e, (int32_t)band_rows, frame);
    lw_pool_free(pool);
    put(f, &status, sizeof status);
    put(f, out, (size_t)out_len);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die(1, "usage: lw_driver CASES OUT");
    FILE *in = fopen(argv[1], "rb");
    if (!in)
        die(1, "cannot open the case file");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || fread(data, 1, (size_t)size, in) != (size_t)size)
        die(1, "cannot read the case file");
    fclose(in);
    cursor c = {data, data + size};
    char *magic = take(&c, 8);
    if (memcmp(magic, "LWARMv1", 8) != 0)
        die(2, "not a case file (bad magic)");
    int32_t cases = i32(&c);

    FILE *out = fopen(argv[2], "wb");
    if (!out)
        die(1, "cannot create the output file");
    if (!lw_kernel_supported(0))
        die(3, "the default kernel is not supported on this CPU");
    put_string(out, lw_kernel_name(0));
    put_string(out, lw_build_info());
    for (int k = 0; k < cases; k++) {
        switch (i32(&c)) {
        case 1: pipeline(&c, out, 0); break;
        case 5: pipeline(&c, out, 1); break;
        case 2: correct(&c, out); break;
        case 3: scan(&c, out); break;
        case 4: first_bad(&c, out); break;
        case 6: encode(&c, out); break;
        default: die(2, "unknown case kind");
        }
    }
    if (c.p != c.end)
        die(2, "trailing bytes after the last case");
    if (fclose(out) != 0)
        die(1, "cannot write the output file");
    return 0;
}
