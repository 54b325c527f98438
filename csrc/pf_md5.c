/* MD5 (RFC 1321), portable C99.  Only used for the body_md5 request
 * parameter, where MD5 is a checksum the protocol asks for, not a MAC. */
#include "pf_md5.h"

#include <stdint.h>
#include <string.h>

/* G as a sum of disjoint bit sets and H with b applied last: b, the value
 * just computed, is then on fewer operations of the critical path. */
#define F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define G(x, y, z) (((x) & (z)) + ((y) & ~(z)))
#define H(x, y, z) ((x) ^ ((y) ^ (z)))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))
#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define STEP(f, a, b, c, d, x, t, s)                  \
    do {                                              \
        (a) += (x) + (uint32_t)(t);                   \
        (a) += f((b), (c), (d));                      \
        (a) = ROTL((a), (s)) + (b);                   \
    } while (0)

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void md5_blocks(uint32_t st[4], const unsigned char *p, size_t nblocks)
{
    while (nblocks--) {
        uint32_t X[16];
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        int i;
        for (i = 0; i < 16; i++)
            X[i] = load_le32(p + 4 * i);

        STEP(F, a, b, c, d, X[0], 0xd76aa478, 7);
        STEP(F, d, a, b, c, X[1], 0xe8c7b756, 12);
        STEP(F, c, d, a, b, X[2], 0x242070db, 17);
        STEP(F, b, c, d, a, X[3], 0xc1bdceee, 22);
        STEP(F, a, b, c, d, X[4], 0xf57c0faf, 7);
        STEP(F, d, a, b, c, X[5], 0x4787c62a, 12);
        STEP(F, c, d, a, b, X[6], 0xa8304613, 17);
        STEP(F, b, c, d, a, X[7], 0xfd469501, 22);
        STEP(F, a, b, c, d, X[8], 0x698098d8, 7);
        STEP(F, d, a, b, c, X[9], 0x8b44f7af, 12);
        STEP(F, c, d, a, b, X[10], 0xffff5bb1, 17);
        STEP(F, b, c, d, a, X[11], 0x895cd7be, 22);
        STEP(F, a, b, c, d, X[12], 0x6b901122, 7);
        STEP(F, d, a, b, c, X[13], 0xfd987193, 12);
        STEP(F, c, d, a, b, X[14], 0xa679438e, 17);
        STEP(F, b, c, d, a, X[15], 0x49b40821, 22);

        STEP(G, a, b, c, d, X[1], 0xf61e2562, 5);
        STEP(G, d, a, b, c, X[6], 0xc040b340, 9);
        STEP(G, c, d, a, b, X[11], 0x265e5a51, 14);
        STEP(G, b, c, d, a, X[0], 0xe9b6c7aa, 20);
        STEP(G, a, b, c, d, X[5], 0xd62f105d, 5);
        STEP(G, d, a, b, c, X[10], 0x02441453, 9);
        STEP(G, c, d, a, b, X[15], 0xd8a1e681, 14);
        STEP(G, b, c, d, a, X[4], 0xe7d3fbc8, 20);
        STEP(G, a, b, c, d, X[9], 0x21e1cde6, 5);
        STEP(G, d, a, b, c, X[14], 0xc33707d6, 9);
        STEP(G, c, d, a, b, X[3], 0xf4d50d87, 14);
        STEP(G, b, c, d, a, X[8], 0x455a14ed, 20);
        STEP(G, a, b, c, d, X[13], 0xa9e3e905, 5);
        STEP(G, d, a, b, c, X[2], 0xfcefa3f8, 9);
        STEP(G, c, d, a, b, X[7], 0x676f02d9, 14);
        STEP(G, b, c, d, a, X[12], 0x8d2a4c8a, 20);

        STEP(H, a, b, c, d, X[5], 0xfffa3942, 4);
        STEP(H, d, a, b, c, X[8], 0x8771f681, 11);
        STEP(H, c, d, a, b, X[11], 0x6d9d6122, 16);
        STEP(H, b, c, d, a, X[14], 0xfde5380c, 23);
        STEP(H, a, b, c, d, X[1], 0xa4beea44, 4);
        STEP(H, d, a, b, c, X[4], 0x4bdecfa9, 11);
        STEP(H, c, d, a, b, X[7], 0xf6bb4b60, 16);
        STEP(H, b, c, d, a, X[10], 0xbebfbc70, 23);
        STEP(H, a, b, c, d, X[13], 0x289b7ec6, 4);
        STEP(H, d, a, b, c, X[0], 0xeaa127fa, 11);
        STEP(H, c, d, a, b, X[3], 0xd4ef3085, 16);
        STEP(H, b, c, d, a, X[6], 0x04881d05, 23);
        STEP(H, a, b, c, d, X[9], 0xd9d4d039, 4);
        STEP(H, d, a, b, c, X[12], 0xe6db99e5, 11);
        STEP(H, c, d, a, b, X[15], 0x1fa27cf8, 16);
        STEP(H, b, c, d, a, X[2], 0xc4ac5665, 23);

        STEP(I, a, b, c, d, X[0], 0xf4292244, 6);
        STEP(I, d, a, b, c, X[7], 0x432aff97, 10);
        STEP(I, c, d, a, b, X[14], 0xab9423a7, 15);
        STEP(I, b, c, d, a, X[5], 0xfc93a039, 21);
        STEP(I, a, b, c, d, X[12], 0x655b59c3, 6);
        STEP(I, d, a, b, c, X[3], 0x8f0ccc92, 10);
        STEP(I, c, d, a, b, X[10], 0xffeff47d, 15);
        STEP(I, b, c, d, a, X[1], 0x85845dd1, 21);
        STEP(I, a, b, c, d, X[8], 0x6fa87e4f, 6);
        STEP(I, d, a, b, c, X[15], 0xfe2ce6e0, 10);
        STEP(I, c, d, a, b, X[6], 0xa3014314, 15);
        STEP(I, b, c, d, a, X[13], 0x4e0811a1, 21);
        STEP(I, a, b, c, d, X[4], 0xf7537e82, 6);
        STEP(I, d, a, b, c, X[11], 0xbd3af235, 10);
        STEP(I, c, d, a, b, X[2], 0x2ad7d2bb, 15);
        STEP(I, b, c, d, a, X[9], 0xeb86d391, 21);

        st[0] += a; st[1] += b; st[2] += c; st[3] += d;
        p += 64;
    }
}

void pf_md5(const unsigned char *p, size_t len, uint32_t st[4])
{
    unsigned char tail[128];
    uint64_t bits = (uint64_t)len << 3;
    size_t whole = len / 64, rest = len % 64, tlen, i;

    st[0] = 0x67452301u;
    st[1] = 0xefcdab89u;
    st[2] = 0x98badcfeu;
    st[3] = 0x10325476u;
    md5_blocks(st, p, whole);
    if (rest)
        memcpy(tail, p + whole * 64, rest);
    tail[rest] = 0x80;
    tlen = rest < 56 ? 64 : 128;
    memset(tail + rest + 1, 0, tlen - 8 - (rest + 1));
    for (i = 0; i < 8; i++)
        tail[tlen - 8 + i] = (unsigned char)(bits >> (8 * i));
    md5_blocks(st, tail, tlen / 64);
}
