/* SHA-256 for pusher_fast: a portable C99 compression function and, on x86,
 * one built on the SHA extensions (SHA-NI), chosen at run time with cpuid.
 * The SHA-NI function carries its own target attribute, so this file builds
 * with plain -O2 and runs on CPUs without the extensions. */
#include "pf_sha256.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define PF_HAVE_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define PF_HAVE_SHANI 0
#endif

const uint32_t pf_sha256_iv[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

/* 16-byte aligned so the SHA-NI path can load four constants at once. */
#if defined(__GNUC__)
__attribute__((aligned(16)))
#endif
static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* ---- portable ---------------------------------------------------------- */

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))

/* One round; the eight working variables rotate by renaming, not by moves. */
#define RND(a, b, c, d, e, f, g, h, i)                                  \
    do {                                                                \
        uint32_t t1_ = (h) + BSIG1(e) + CH(e, f, g) + K256[i] + W[i];   \
        uint32_t t2_ = BSIG0(a) + MAJ(a, b, c);                         \
        (d) += t1_;                                                     \
        (h) = t1_ + t2_;                                                \
    } while (0)

static void blocks_portable(uint32_t st[8], const unsigned char *p, size_t nblocks)
{
    uint32_t W[64];
    while (nblocks--) {
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
        int i;
        for (i = 0; i < 16; i++)
            W[i] = pf_load_be32(p + 4 * i);
        for (i = 16; i < 64; i++)
            W[i] = SSIG1(W[i - 2]) + W[i - 7] + SSIG0(W[i - 15]) + W[i - 16];
        for (i = 0; i < 64; i += 8) {
            RND(a, b, c, d, e, f, g, h, i + 0);
            RND(h, a, b, c, d, e, f, g, i + 1);
            RND(g, h, a, b, c, d, e, f, i + 2);
            RND(f, g, h, a, b, c, d, e, i + 3);
            RND(e, f, g, h, a, b, c, d, i + 4);
            RND(d, e, f, g, h, a, b, c, i + 5);
            RND(c, d, e, f, g, h, a, b, i + 6);
            RND(b, c, d, e, f, g, h, a, i + 7);
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d;
        st[4] += e; st[5] += f; st[6] += g; st[7] += h;
        p += PF_SHA256_BLOCK;
    }
}

/* ---- x86 SHA extensions -------------------------------------------------- */

#if PF_HAVE_SHANI

/* Four rounds: message words Wv (already byte-swapped) plus constants K256[k..k+3]. */
#define QROUND(Wv, k)                                                       \
    do {                                                                    \
        __m128i m_ = _mm_add_epi32((Wv), _mm_load_si128((const __m128i *)&K256[k])); \
        s1 = _mm_sha256rnds2_epu32(s1, s0, m_);                             \
        m_ = _mm_shuffle_epi32(m_, 0x0E);                                   \
        s0 = _mm_sha256rnds2_epu32(s0, s1, m_);                             \
    } while (0)

/* W0 <- next four schedule words from the previous sixteen (W0..W3, oldest first). */
#define SCHED(W0, W1, W2, W3)                                               \
    (W0) = _mm_sha256msg2_epu32(                                            \
        _mm_add_epi32(_mm_sha256msg1_epu32((W0), (W1)), _mm_alignr_epi8((W3), (W2), 4)), (W3))

__attribute__((target("sha,sse4.1")))
static void blocks_shani(uint32_t st[8], const unsigned char *p, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i s0, s1, t;

    /* State words a..h -> the ABEF / CDGH lane layout the instructions use. */
    t = _mm_loadu_si128((const __m128i *)&st[0]);
    s1 = _mm_loadu_si128((const __m128i *)&st[4]);
    t = _mm_shuffle_epi32(t, 0xB1);
    s1 = _mm_shuffle_epi32(s1, 0x1B);
    s0 = _mm_alignr_epi8(t, s1, 8);
    s1 = _mm_blend_epi16(s1, t, 0xF0);

    while (nblocks--) {
        const __m128i save0 = s0, save1 = s1;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
        int k;

        QROUND(w0, 0);
        QROUND(w1, 4);
        QROUND(w2, 8);
        QROUND(w3, 12);
        for (k = 16; k < 64; k += 16) {
            SCHED(w0, w1, w2, w3);
            QROUND(w0, k);
            SCHED(w1, w2, w3, w0);
            QROUND(w1, k + 4);
            SCHED(w2, w3, w0, w1);
            QROUND(w2, k + 8);
            SCHED(w3, w0, w1, w2);
            QROUND(w3, k + 12);
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
        p += PF_SHA256_BLOCK;
    }

    t = _mm_shuffle_epi32(s0, 0x1B);
    s1 = _mm_shuffle_epi32(s1, 0xB1);
    s0 = _mm_blend_epi16(t, s1, 0xF0);
    s1 = _mm_alignr_epi8(s1, t, 8);
    _mm_storeu_si128((__m128i *)&st[0], s0);
    _mm_storeu_si128((__m128i *)&st[4], s1);
}

static int cpu_has_shani(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & (1u << 9)) || !(c & (1u << 19))) /* SSSE3, SSE4.1 */
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1u; /* SHA */
}

#endif /* PF_HAVE_SHANI */

/* ---- dispatch ------------------------------------------------------------ */

typedef void (*blocks_fn)(uint32_t st[8], const unsigned char *p, size_t nblocks);

static blocks_fn blocks_impl = blocks_portable;
static int impl_id = PF_SHA256_PORTABLE;
static int impl_best = -1;

static int best_impl(void)
{
    if (impl_best < 0) {
#if PF_HAVE_SHANI
        impl_best = cpu_has_shani() ? PF_SHA256_SHANI : PF_SHA256_PORTABLE;
#else
        impl_best = PF_SHA256_PORTABLE;
#endif
    }
    return impl_best;
}

int pf_sha256_use(int impl)
{
    if (impl < 0)
        impl = best_impl();
    if (impl == PF_SHA256_PORTABLE) {
        blocks_impl = blocks_portable;
        impl_id = impl;
        return impl;
    }
#if PF_HAVE_SHANI
    if (impl == PF_SHA256_SHANI && best_impl() == PF_SHA256_SHANI) {
        blocks_impl = blocks_shani;
        impl_id = impl;
        return impl;
    }
#endif
    return -1;
}

int pf_sha256_impl(void)
{
    return impl_id;
}

/* Runs once when the library is loaded (before any thread can hash), so the
 * dispatch pointer is never written concurrently with a read.  pf_cpu_init
 * is also public for toolchains without constructors; calling it again is harmless. */
#if defined(__GNUC__)
__attribute__((constructor))
#endif
void pf_cpu_init(void)
{
    (void)pf_sha256_use(-1);
}

void pf_sha256_blocks(uint32_t h[8], const unsigned char *p, size_t nblocks)
{
    if (nblocks)
        blocks_impl(h, p, nblocks);
}

/* ---- streaming ----------------------------------------------------------- */

void pf_sha256_init(pf_sha256_ctx *ctx)
{
    pf_sha256_resume(ctx, pf_sha256_iv, 0);
}

void pf_sha256_resume(pf_sha256_ctx *ctx, const uint32_t h[8], uint64_t total)
{
    memcpy(ctx->h, h, sizeof ctx->h);
    ctx->total = total;
    ctx->used = 0;
}

void pf_sha256_update(pf_sha256_ctx *ctx, const unsigned char *p, size_t len)
{
    if (len == 0)
        return;
    ctx->total += len;
    if (ctx->used) {
        size_t room = PF_SHA256_BLOCK - ctx->used;
        if (len < room) {
            memcpy(ctx->buf + ctx->used, p, len);
            ctx->used += len;
            return;
        }
        memcpy(ctx->buf + ctx->used, p, room);
        blocks_impl(ctx->h, ctx->buf, 1);
        p += room;
        len -= room;
        ctx->used = 0;
    }
    if (len >= PF_SHA256_BLOCK) {
        size_t n = len / PF_SHA256_BLOCK;
        blocks_impl(ctx->h, p, n);
        p += n * PF_SHA256_BLOCK;
        len -= n * PF_SHA256_BLOCK;
    }
    if (len) {
        memcpy(ctx->buf, p, len);
        ctx->used = len;
    }
}

void pf_sha256_finish(pf_sha256_ctx *ctx)
{
    uint64_t bits = ctx->total << 3;
    size_t used = ctx->used;

    ctx->buf[used++] = 0x80;
    if (used > PF_SHA256_BLOCK - 8) {
        memset(ctx->buf + used, 0, PF_SHA256_BLOCK - used);
        blocks_impl(ctx->h, ctx->buf, 1);
        used = 0;
    }
    memset(ctx->buf + used, 0, PF_SHA256_BLOCK - 8 - used);
    pf_store_be32(ctx->buf + PF_SHA256_BLOCK - 8, (uint32_t)(bits >> 32));
    pf_store_be32(ctx->buf + PF_SHA256_BLOCK - 4, (uint32_t)bits);
    blocks_impl(ctx->h, ctx->buf, 1);
}

void pf_sha256_final(pf_sha256_ctx *ctx, unsigned char out[PF_SHA256_DIGEST])
{
    int i;
    pf_sha256_finish(ctx);
    for (i = 0; i < 8; i++)
        pf_store_be32(out + 4 * i, ctx->h[i]);
}
