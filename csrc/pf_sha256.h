/* SHA-256 (FIPS 180-4): portable C99 block function, plus x86 SHA-NI chosen
 * at run time.  Internal header of pusher_fast; see pf_ffi.h for the API. */
#ifndef PF_SHA256_H
#define PF_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pf_ffi.h"

#define PF_SHA256_BLOCK 64
#define PF_SHA256_DIGEST 32

typedef struct {
    uint32_t h[8];
    uint64_t total;            /* bytes hashed so far, including buffered ones */
    size_t used;               /* bytes waiting in buf */
    unsigned char buf[PF_SHA256_BLOCK];
} pf_sha256_ctx;

extern const uint32_t pf_sha256_iv[8];

/* Compresses nblocks whole 64-byte blocks into h with the selected implementation. */
void pf_sha256_blocks(uint32_t h[8], const unsigned char *p, size_t nblocks);

/* Streaming interface.  pf_sha256_resume starts from a saved chain value that
 * already covers `total` bytes (a multiple of 64), as HMAC needs. */
void pf_sha256_init(pf_sha256_ctx *ctx);
void pf_sha256_resume(pf_sha256_ctx *ctx, const uint32_t h[8], uint64_t total);
void pf_sha256_update(pf_sha256_ctx *ctx, const unsigned char *p, size_t len);
/* Pads and finishes: afterwards ctx->h holds the digest as eight big-endian words. */
void pf_sha256_finish(pf_sha256_ctx *ctx);
void pf_sha256_final(pf_sha256_ctx *ctx, unsigned char out[PF_SHA256_DIGEST]);

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PF_LITTLE_ENDIAN 1
#endif

/* Big-endian 32-bit load and store (one bswap+move where the compiler can). */
static inline uint32_t pf_load_be32(const unsigned char *p)
{
#ifdef PF_LITTLE_ENDIAN
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
#else
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
#endif
}

static inline void pf_store_be32(unsigned char *p, uint32_t v)
{
#ifdef PF_LITTLE_ENDIAN
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
#else
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
#endif
}

#endif
