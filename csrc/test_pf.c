/* Boundary and fuzz tests for the pusher_fast C code, meant to run under
 * -fsanitize=address,undefined (see scripts/sanitize.sh).
 *
 * Every input and output lives in a heap block of exactly its size, so a read
 * or write one byte past it is an AddressSanitizer report.  Known vectors
 * (FIPS 180, RFC 1321, RFC 4231, the Pusher worked examples) pin the results;
 * the fuzz part checks pf_sign_query against an independent reference built
 * from the one-shot functions.  Exit status 0 means every check passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pf_ffi.h"
#include "pf_md5.h"
#include "pf_sha256.h"

static int failures;
static int checks;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

/* ---- helpers -------------------------------------------------------------- */

/* A heap copy of exactly len bytes (one byte for len 0, never read). */
static char *exact(const void *src, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (len)
        memcpy(p, src, len);
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void fill(char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (char)(rng() & 0xff);
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex_str(const char *data, size_t len, char out[65])
{
    char *in = exact(data, len), *o = malloc(64);
    CHECK(pf_sha256_hex(in, len, o, 64) == 64);
    memcpy(out, o, 64);
    out[64] = '\0';
    free(in);
    free(o);
}

static void hmac_hex_str(const char *key, size_t klen, const char *msg, size_t mlen, char out[65])
{
    pf_hmac_ctx *ctx = malloc(sizeof *ctx);
    char *k = exact(key, klen), *m = exact(msg, mlen), *o = malloc(64);
    CHECK(pf_hmac_init(ctx, k, klen) == PF_OK);
    CHECK(pf_hmac_hex(ctx, m, mlen, o, 64) == 64);
    memcpy(out, o, 64);
    out[64] = '\0';
    free(ctx);
    free(k);
    free(m);
    free(o);
}

/* ---- known vectors ----------------------------------------------------------- */

static void test_sha256_vectors(void)
{
    char out[65], *million;
    sha256_hex_str("", 0, out);
    CHECK(strcmp(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    sha256_hex_str("abc", 3, out);
    CHECK(strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    sha256_hex_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
    CHECK(strcmp(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    million = malloc(1000000);
    memset(million, 'a', 1000000);
    sha256_hex_str(million, 1000000, out);
    CHECK(strcmp(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    free(million);
}

static void test_md5_vectors(void)
{
    static const struct { const char *in, *hex; } v[] = {
        { "", "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
          "57edf4a22be3c955ac49da2e2107b67a" },
    };
    size_t i;
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].in);
        char *in = exact(v[i].in, n), *o = malloc(32);
        CHECK(pf_md5_hex(in, n, o, 32) == 32);
        CHECK(memcmp(o, v[i].hex, 32) == 0);
        free(in);
        free(o);
    }
}

static void test_hmac_vectors(void)
{
    unsigned char k3[20], k4[25], k6[131], m3[50], m4[50];
    char out[65];
    size_t i;
    static const char m6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char m7[] = "This is a test using a larger than block-size key and a larger than "
                             "block-size data. The key needs to be hashed before being used by the "
                             "HMAC algorithm.";

    memset(k3, 0xaa, sizeof k3);
    memset(m3, 0xdd, sizeof m3);
    for (i = 0; i < sizeof k4; i++)
        k4[i] = (unsigned char)(i + 1);
    memset(m4, 0xcd, sizeof m4);
    memset(k6, 0xaa, sizeof k6);

    hmac_hex_str("\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b",
                 20, "Hi There", 8, out);
    CHECK(strcmp(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7") == 0);
    hmac_hex_str("Jefe", 4, "what do ya want for nothing?", 28, out);
    CHECK(strcmp(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0);
    hmac_hex_str((const char *)k3, sizeof k3, (const char *)m3, sizeof m3, out);
    CHECK(strcmp(out, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe") == 0);
    hmac_hex_str((const char *)k4, sizeof k4, (const char *)m4, sizeof m4, out);
    CHECK(strcmp(out, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b") == 0);
    hmac_hex_str((const char *)k6, sizeof k6, m6, strlen(m6), out);
    CHECK(strcmp(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54") == 0);
    hmac_hex_str((const char *)k6, sizeof k6, m7, strlen(m7), out);
    CHECK(strcmp(out, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2") == 0);

    /* design.md §2: private channel authorization. */
    hmac_hex_str("7ad3773142a6692b25b8", 20, "1234.1234:private-foobar", 24, out);
    CHECK(strcmp(out, "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4") == 0);
}

static int64_t sign(const char *secret, const char *method, const char *path, const char *key,
                    int64_t ts, const char *extra, const char *body, size_t body_len,
                    char *out, size_t out_len)
{
    size_t sl = strlen(secret), ml = strlen(method), pl = strlen(path), kl = strlen(key);
    size_t el = strlen(extra);
    pf_hmac_ctx *ctx = malloc(sizeof *ctx);
    char *s = exact(secret, sl), *m = exact(method, ml), *p = exact(path, pl);
    char *k = exact(key, kl), *e = exact(extra, el), *b = exact(body, body_len);
    int64_t rc;

    CHECK(pf_hmac_init(ctx, s, sl) == PF_OK);
    rc = pf_sign_query(ctx, m, ml, p, pl, k, kl, ts, e, el, b, body_len, out, out_len);
    free(ctx);
    free(s);
    free(m);
    free(p);
    free(k);
    free(e);
    free(b);
    return rc;
}

static void test_sign_worked_example(void)
{
    static const char body[] = "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":\\\"data\\\"}\"}";
    static const char expect[] =
        "auth_key=278d425bdf160c739803"
        "&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        "&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
    size_t n = sizeof expect - 1;
    char *out = malloc(n);
    CHECK(pf_sign_query_size(20, 1353088179, 0) == (int64_t)n);
    CHECK(sign("7ad3773142a6692b25b8", "POST", "/apps/3/events", "278d425bdf160c739803", 1353088179,
               "", body, strlen(body), out, n) == (int64_t)n);
    CHECK(memcmp(out, expect, n) == 0);
    free(out);
}

/* An endpoint signs exactly what pf_sign_query signs, and refuses oversize inputs. */
static void test_endpoint(void)
{
    static const char key[] = "278d425bdf160c739803", secret[] = "7ad3773142a6692b25b8";
    static char big[PF_ENDPOINT_MAX_PATH + 1];
    pf_hmac_ctx ctx;
    pf_endpoint *ep = malloc(sizeof *ep);
    char a[400], b[400];
    size_t len;
    int64_t ra, rb;

    CHECK(pf_hmac_init(&ctx, secret, strlen(secret)) == PF_OK);
    CHECK(pf_endpoint_init(ep, &ctx, "POST", 4, "/apps/3/events", 14, key, strlen(key)) == PF_OK);
    for (len = 0; len < 200; len += 7) {
        char body[200];
        memset(body, 'x', len);
        ra = pf_endpoint_sign(ep, 1353088179, body, len, a, sizeof a);
        rb = pf_sign_query(&ctx, "POST", 4, "/apps/3/events", 14, key, strlen(key), 1353088179,
                           NULL, 0, body, len, b, sizeof b);
        CHECK(ra > 0 && ra == rb && memcmp(a, b, (size_t)ra) == 0);
    }
    /* too small an output buffer: an error, and nothing written past it */
    CHECK(pf_endpoint_sign(ep, 1, "", 0, a, 10) == PF_ERR_BUFFER);
    CHECK(pf_endpoint_sign(ep, -5, "", 0, a, sizeof a) == PF_ERR_TIMESTAMP);
    CHECK(pf_endpoint_sign(NULL, 1, "", 0, a, sizeof a) == PF_ERR_ARG);
    memset(big, 'p', sizeof big);
    CHECK(pf_endpoint_init(ep, &ctx, "POST", 4, big, sizeof big, key, 3) == PF_ERR_ARG);
    CHECK(pf_endpoint_init(ep, &ctx, "POST", 4, big, PF_ENDPOINT_MAX_PATH, key, 3) == PF_OK);
    CHECK(pf_endpoint_init(ep, &ctx, "POSTPOSTX", 9, "/", 1, key, 3) == PF_ERR_ARG);
    CHECK(pf_endpoint_init(ep, &ctx, "", 0, "", 0, "", 0) == PF_OK);
    CHECK(pf_endpoint_sign(ep, 0, NULL, 0, a, sizeof a) > 0);
    CHECK(pf_endpoint_init(NULL, &ctx, "", 0, "", 0, "", 0) == PF_ERR_ARG);
    free(ep);
}

/* Channel and user authorization: the worked vector, equality with a plain
 * HMAC of the same message, and every refusal. */
static void test_auth(void)
{
    static const char key[] = "278d425bdf160c739803", secret[] = "7ad3773142a6692b25b8";
    static const char *bad_ids[] = { "1.1:private-other", "1.1\n", "\xd9\xa1.\xd9\xa1", ".1", "1.",
                                     "", "1.1.1", "11", " 1.1", "1.1 ", "-1.1" };
    static const char *bad_channels[] = { "", "a b", "a:b", "#server-to-user-1", "caf\xc3\xa9",
                                          "a\nb" };
    char out[200], expect[64], msg[400], long_channel[202];
    pf_hmac_ctx ctx;
    size_t i, kl = strlen(key);
    int64_t n;

    CHECK(pf_hmac_init(&ctx, secret, strlen(secret)) == PF_OK);
    n = pf_channel_auth(&ctx, key, kl, "1234.1234", 9, "private-foobar", 14, NULL, 0, out, sizeof out);
    CHECK(n == (int64_t)(kl + 65));
    CHECK(memcmp(out, "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
                 (size_t)n) == 0);
    /* presence: signs socket:channel:data */
    n = pf_channel_auth(&ctx, key, kl, "1.2", 3, "presence-x", 10, "{\"user_id\":\"u\"}", 15, out,
                        sizeof out);
    strcpy(msg, "1.2:presence-x:{\"user_id\":\"u\"}");
    CHECK(pf_hmac_hex(&ctx, msg, strlen(msg), expect, 64) == 64);
    CHECK(n == (int64_t)(kl + 65) && memcmp(out + kl + 1, expect, 64) == 0 && out[kl] == ':');
    /* user sign-in: signs socket::user::data */
    n = pf_user_auth(&ctx, key, kl, "7.8", 3, "{\"id\":\"u\"}", 10, out, sizeof out);
    strcpy(msg, "7.8::user::{\"id\":\"u\"}");
    CHECK(pf_hmac_hex(&ctx, msg, strlen(msg), expect, 64) == 64);
    CHECK(n == (int64_t)(kl + 65) && memcmp(out + kl + 1, expect, 64) == 0);
    for (i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
        CHECK(pf_channel_auth(&ctx, key, kl, bad_ids[i], strlen(bad_ids[i]), "private-a", 9, NULL, 0,
                              out, sizeof out) == PF_ERR_SOCKET_ID);
        CHECK(pf_user_auth(&ctx, key, kl, bad_ids[i], strlen(bad_ids[i]), "{}", 2, out, sizeof out)
              == PF_ERR_SOCKET_ID);
    }
    for (i = 0; i < sizeof bad_channels / sizeof *bad_channels; i++)
        CHECK(pf_channel_auth(&ctx, key, kl, "1.1", 3, bad_channels[i], strlen(bad_channels[i]), NULL,
                              0, out, sizeof out) == PF_ERR_CHANNEL);
    memset(long_channel, 'c', sizeof long_channel);
    CHECK(pf_channel_auth(&ctx, key, kl, "1.1", 3, long_channel, 200, NULL, 0, out, sizeof out) > 0);
    CHECK(pf_channel_auth(&ctx, key, kl, "1.1", 3, long_channel, 201, NULL, 0, out, sizeof out)
          == PF_ERR_CHANNEL);
    /* an output buffer one byte short: refused, nothing written */
    memset(out, 'Z', sizeof out);
    CHECK(pf_channel_auth(&ctx, key, kl, "1.1", 3, "a", 1, NULL, 0, out, kl + 64) == PF_ERR_BUFFER);
    CHECK(out[0] == 'Z');
    CHECK(pf_user_auth(&ctx, key, kl, "1.1", 3, "{}", 2, out, kl + 64) == PF_ERR_BUFFER);
    CHECK(pf_channel_auth(NULL, key, kl, "1.1", 3, "a", 1, NULL, 0, out, sizeof out) == PF_ERR_ARG);
    CHECK(pf_channel_auth(&ctx, key, kl, NULL, 3, "a", 1, NULL, 0, out, sizeof out) == PF_ERR_ARG);
    CHECK(pf_user_auth(&ctx, key, kl, "1.1", 3, NULL, 5, out, sizeof out) == PF_ERR_ARG);
}

/* ---- boundaries ------------------------------------------------------------------- */

static void test_bad_arguments(void)
{
    pf_hmac_ctx *ctx = malloc(sizeof *ctx);
    char *small = malloc(63), one[1] = { 'x' };
    char *out = malloc(400);
    size_t huge = (size_t)-1;

    CHECK(pf_hmac_init(NULL, "", 0) == PF_ERR_ARG);
    CHECK(pf_hmac_init(ctx, NULL, 1) == PF_ERR_ARG);
    CHECK(pf_hmac_init(ctx, one, huge) == PF_ERR_ARG);
    CHECK(pf_hmac_init(ctx, NULL, 0) == PF_OK); /* an empty secret is a secret */

    memset(small, '#', 63);
    CHECK(pf_hmac_hex(ctx, one, 1, small, 63) == PF_ERR_BUFFER);
    CHECK(pf_md5_hex(one, 1, small, 31) == PF_ERR_BUFFER);
    CHECK(pf_sha256_hex(one, 1, small, 63) == PF_ERR_BUFFER);
    {
        int i, untouched = 1;
        for (i = 0; i < 63; i++)
            untouched &= small[i] == '#';
        CHECK(untouched);
    }
    CHECK(pf_hmac_hex(NULL, one, 1, out, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_hex(ctx, NULL, 1, out, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_hex(ctx, one, huge, out, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_hex(ctx, one, 1, NULL, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_hex(ctx, NULL, 0, out, 64) == 64);
    CHECK(pf_md5_hex(NULL, 0, out, 32) == 32);
    CHECK(memcmp(out, "d41d8cd98f00b204e9800998ecf8427e", 32) == 0);
    CHECK(pf_md5_hex(one, huge / 2, out, 32) == PF_ERR_ARG);
    CHECK(pf_sha256_hex(one, huge, out, 64) == PF_ERR_ARG);
    CHECK(pf_sha256_hex(NULL, 0, out, 64) == 64);

    CHECK(pf_hmac_verify(ctx, one, 1, NULL, 0) == 0);
    CHECK(pf_hmac_verify(ctx, one, 1, out, 63) == 0);
    CHECK(pf_hmac_verify(ctx, one, 1, out, 65) == 0);
    CHECK(pf_hmac_verify(ctx, NULL, 1, out, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_verify(ctx, one, huge, out, 64) == PF_ERR_ARG);
    CHECK(pf_hmac_verify(NULL, one, 1, out, 64) == PF_ERR_ARG);

    CHECK(pf_sign_query_size(huge, 0, 0) == PF_ERR_ARG);
    CHECK(pf_sign_query_size(0, 0, huge) == PF_ERR_ARG);
    CHECK(pf_sign_query_size(0, -1, 0) == PF_ERR_TIMESTAMP);
    CHECK(pf_sign_query_size(0, INT64_MIN, 0) == PF_ERR_TIMESTAMP);
    CHECK(pf_sign_query_size(0, INT64_MAX, 0) == PF_SIGN_FIXED_LEN + PF_TIMESTAMP_MAX_DIGITS);
    CHECK(pf_sign_query_size(0, 0, 0) == PF_SIGN_FIXED_LEN + 1);
    CHECK(pf_sign_query_size(3, 10, 5) == PF_SIGN_FIXED_LEN + 3 + 2 + 6);

    CHECK(pf_sign_query(NULL, "GET", 3, "/", 1, "k", 1, 1, "", 0, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, NULL, 3, "/", 1, "k", 1, 1, "", 0, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, NULL, 1, "k", 1, 1, "", 0, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, NULL, 1, 1, "", 0, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, "k", 1, 1, NULL, 2, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, "k", 1, 1, "", 0, NULL, 9, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, "k", 1, 1, "", 0, "", 0, NULL, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", huge, "/", 1, "k", 1, 1, "", 0, "", 0, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, "k", 1, 1, "", 0, one, huge, out, 400) == PF_ERR_ARG);
    CHECK(pf_sign_query(ctx, "GET", 3, "/", 1, "k", 1, -1, "", 0, "", 0, out, 400) == PF_ERR_TIMESTAMP);
    /* Everything empty or NULL-with-zero is fine. */
    CHECK(pf_sign_query(ctx, NULL, 0, NULL, 0, NULL, 0, 0, NULL, 0, NULL, 0, out, 400)
          == PF_SIGN_FIXED_LEN + 1);

    free(ctx);
    free(small);
    free(out);
}

/* ---- references for fuzzing ------------------------------------------------------------ */

static int is_reserved(const char *k, size_t n)
{
    static const char *const names[] = { "auth_key", "auth_signature", "auth_timestamp",
                                         "auth_version", "body_md5" };
    size_t i;
    for (i = 0; i < 5; i++)
        if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0)
            return 1;
    return 0;
}

static int cmp_keys(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    return c ? c : (an > bn) - (an < bn);
}

/* The contract's validation of `extra`, written the obvious way. */
static int reference_extra_error(const char *e, size_t n)
{
    const char *prev = NULL, *item = e, *end = e + n;
    size_t prev_len = 0;
    if (n == 0)
        return 0;
    for (;;) {
        const char *amp = memchr(item, '&', (size_t)(end - item));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(item, '=', (size_t)(stop - item));
        size_t klen;
        if (eq == NULL || eq == item)
            return PF_ERR_EXTRA_FORM;
        klen = (size_t)(eq - item);
        if (is_reserved(item, klen))
            return PF_ERR_EXTRA_RESERVED;
        if (prev && cmp_keys(item, klen, prev, prev_len) <= 0)
            return PF_ERR_EXTRA_ORDER;
        prev = item;
        prev_len = klen;
        if (amp == NULL)
            return 0;
        item = amp + 1;
    }
}

/* Checks a pf_sign_query result independently: its parameters are sorted,
 * the fixed ones carry the right values, and auth_signature is the HMAC of
 * method \n path \n (the result without the auth_signature parameter). */
static void check_signed(const char *secret, size_t sl, const char *method, size_t ml,
                         const char *path, size_t pl, const char *q, size_t qn,
                         const char *body, size_t bl)
{
    const char *sig = NULL, *p = q, *end = q + qn, *prev = NULL;
    size_t prev_len = 0, sn = 0, i;
    char *sts, md5hex[33], mac[65];
    unsigned char digest[16];
    uint32_t st[4];

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        CHECK(eq != NULL);
        if (eq == NULL)
            return;
        if (prev)
            CHECK(cmp_keys(p, (size_t)(eq - p), prev, prev_len) > 0);
        prev = p;
        prev_len = (size_t)(eq - p);
        if (prev_len == 14 && memcmp(p, "auth_signature", 14) == 0) {
            sig = eq + 1;
            CHECK(stop - sig == 64);
        }
        if (prev_len == 8 && memcmp(p, "body_md5", 8) == 0) {
            pf_md5((const unsigned char *)body, bl, st);
            for (i = 0; i < 16; i++)
                digest[i] = (unsigned char)(st[i / 4] >> (8 * (i % 4)));
            hex_of(digest, 16, md5hex);
            CHECK(stop - eq - 1 == 32 && memcmp(eq + 1, md5hex, 32) == 0);
        }
        p = amp ? amp + 1 : end;
    }
    CHECK(sig != NULL);
    if (sig == NULL)
        return;
    /* method \n path \n q-without-"auth_signature=<64>&" */
    sts = malloc(ml + pl + qn + 2);
    memcpy(sts, method, ml);
    sts[ml] = '\n';
    memcpy(sts + ml + 1, path, pl);
    sts[ml + 1 + pl] = '\n';
    sn = ml + pl + 2;
    {
        size_t before = (size_t)(sig - q) - 15, after = (size_t)(sig - q) + 64 + 1;
        memcpy(sts + sn, q, before);
        sn += before;
        memcpy(sts + sn, q + after, qn - after);
        sn += qn - after;
    }
    hmac_hex_str(secret, sl, sts, sn, mac);
    CHECK(memcmp(sig, mac, 64) == 0);
    free(sts);
}

static void random_text(char *buf, size_t n, const char *alphabet)
{
    size_t i, a = strlen(alphabet);
    for (i = 0; i < n; i++)
        buf[i] = alphabet[rng() % a];
}

static size_t random_extra(char *buf, size_t cap)
{
    /* Mostly valid sorted parameters; sometimes a random mess. */
    static const char *const keys[] = { "a", "auth", "auth_k", "auth_key", "auth_key0", "auth_l",
                                        "auth_signature", "auth_t", "auth_timestamp", "auth_u",
                                        "auth_version", "b", "body", "body_md5", "body_md6",
                                        "filter_by_prefix", "info", "z", "\xc3\xa9" };
    size_t n = 0, nkeys = sizeof keys / sizeof keys[0], i;
    if (rng() % 4 == 0) {
        n = (size_t)(rng() % 24);
        if (n > cap)
            n = cap;
        random_text(buf, n, "ab=&1_");
        return n;
    }
    for (i = 0; i < nkeys; i++) {
        size_t kl = strlen(keys[i]), vl = (size_t)(rng() % 12);
        if (rng() % 3)
            continue;
        if (n + kl + vl + 2 > cap)
            break;
        if (n)
            buf[n++] = '&';
        memcpy(buf + n, keys[i], kl);
        n += kl;
        buf[n++] = '=';
        random_text(buf + n, vl, "xyz0=-_.:");
        n += vl;
    }
    return n;
}

static void fuzz_sign(int rounds)
{
    static const int64_t stamps[] = { 0, 1, 9, 10, 99, 100, 999999999, 1000000000, 1353088179,
                                      9999999999, INT64_MAX - 1, INT64_MAX };
    static const size_t sizes[] = { 0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000 };
    char textbuf[512];
    int r;

    for (r = 0; r < rounds; r++) {
        size_t sl = (size_t)(rng() % 140), ml = (size_t)(rng() % 8), pl = (size_t)(rng() % 200);
        size_t kl = (size_t)(rng() % 40), bl = sizes[rng() % (sizeof sizes / sizeof sizes[0])];
        size_t el = random_extra(textbuf, sizeof textbuf);
        int64_t ts = rng() % 2 ? stamps[rng() % (sizeof stamps / sizeof stamps[0])]
                               : (int64_t)(rng() >> 1);
        char *secret = malloc(sl + 1), *method = malloc(ml + 1), *path = malloc(pl + 1);
        char *key = malloc(kl + 1), *body = malloc(bl + 1), *extra = exact(textbuf, el), *out;
        pf_hmac_ctx *ctx = malloc(sizeof *ctx);
        int64_t size, rc;
        int want;

        fill(secret, sl);
        random_text(method, ml, "GETPOSU");
        fill(path, pl);
        /* Keys with '&' or '=' are signed as given, but check_signed could not parse them. */
        random_text(key, kl, "0123456789abcdef\xc3\xa9-_.");
        fill(body, bl);
        CHECK(pf_hmac_init(ctx, secret, sl) == PF_OK);
        size = pf_sign_query_size(kl, ts, el);
        CHECK(size > 0);
        want = reference_extra_error(extra, el);

        /* Exactly the size: succeeds unless extra is invalid, writes all of it. */
        out = malloc((size_t)size);
        rc = pf_sign_query(ctx, method, ml, path, pl, key, kl, ts, extra, el, body, bl, out,
                           (size_t)size);
        if (want) {
            CHECK(rc == want);
        } else {
            CHECK(rc == size);
            if (rc == size)
                check_signed(secret, sl, method, ml, path, pl, out, (size_t)rc, body, bl);
        }
        free(out);

        /* One byte short: refused before anything is written. */
        out = malloc((size_t)size - 1);
        memset(out, '#', (size_t)size - 1);
        rc = pf_sign_query(ctx, method, ml, path, pl, key, kl, ts, extra, el, body, bl, out,
                           (size_t)size - 1);
        CHECK(rc == PF_ERR_BUFFER);
        CHECK(out[0] == '#' && out[size - 2] == '#');
        free(out);

        free(secret);
        free(method);
        free(path);
        free(key);
        free(body);
        free(extra);
        free(ctx);
    }
}

/* ---- one call per trigger / batch ------------------------------------------------------------ */

/* The body pf_event_sign should frame, built byte by byte (out has room for the worst case). */
static size_t reference_body(int frame, const char *prefix, size_t pl, const char *data, size_t dl,
                             char *out)
{
    size_t n = 0, i;
    memcpy(out, prefix, pl);
    n += pl;
    if (frame == PF_FRAME_STRING)
        out[n++] = '"';
    for (i = 0; i < dl; i++) {
        if (frame == PF_FRAME_STRING && (data[i] == '"' || data[i] == '\\'))
            out[n++] = '\\';
        out[n++] = data[i];
    }
    if (frame == PF_FRAME_STRING)
        out[n++] = '"';
    if (frame == PF_FRAME_BATCH)
        out[n++] = ']';
    out[n++] = '}';
    return n;
}

static char *filled(size_t len)
{
    char *p = malloc(len ? len : 1);
    if (p == NULL)
        exit(2);
    memset(p, '#', len);
    return p;
}

static int untouched(const char *p, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (p[i] != '#')
            return 0;
    return 1;
}

static void fuzz_event(int rounds)
{
    static const char alphabet[] = "\"\\ab{}:,";
    int r;
    for (r = 0; r < rounds; r++) {
        size_t sl = (size_t)(rng() % 100), kl = (size_t)(rng() % 40), pl = (size_t)(rng() % 60);
        size_t dl = (size_t)(rng() % (r % 10 == 0 ? 3000 : 300)), pathl = (size_t)(rng() % 50);
        size_t i, ref_len, tsize;
        int frame = (int)(rng() % 3);
        int64_t ts = rng() % 3 ? (int64_t)(rng() >> 1) : (int64_t)(rng() % 10000000000u);
        int64_t bsize, qsize, n;
        char *secret = filled(sl), *key = filled(kl), *prefix = filled(pl), *data = filled(dl);
        char *path = filled(pathl), *ref, *refq, *body, *query, *tail, *shortb;
        pf_hmac_ctx ctx;
        pf_endpoint ep;

        fill(secret, sl);
        fill(key, kl);
        fill(prefix, pl);
        fill(path, pathl);
        fill(data, dl);
        for (i = 0; i < dl; i++) /* plenty of characters to escape */
            if (rng() % 4 == 0)
                data[i] = alphabet[rng() % (sizeof alphabet - 1)];
        CHECK(pf_hmac_init(&ctx, secret, sl) == PF_OK);
        CHECK(pf_endpoint_init(&ep, &ctx, "POST", 4, path, pathl, key, kl) == PF_OK);

        ref = malloc(pl + 2 * dl + 3);
        ref_len = reference_body(frame, prefix, pl, data, dl, ref);
        bsize = pf_event_body_size(frame, prefix, pl, data, dl);
        CHECK(bsize == (int64_t)ref_len);
        qsize = pf_sign_query_size(kl, ts, 0);
        refq = filled((size_t)qsize);
        CHECK(pf_endpoint_sign(&ep, ts, ref, ref_len, refq, (size_t)qsize) == qsize);

        /* Exact buffers: the body and the query pf_endpoint_sign gives for it. */
        body = filled(ref_len);
        query = filled((size_t)qsize);
        n = pf_event_sign(&ep, ts, frame, prefix, pl, data, dl, body, ref_len, query, (size_t)qsize);
        CHECK(n == (int64_t)ref_len);
        CHECK(memcmp(body, ref, ref_len) == 0);
        CHECK(memcmp(query, refq, (size_t)qsize) == 0);
        free(body);
        free(query);

        /* Room for the worst case (every byte escaped), as Python gives: no counting. */
        body = filled(pl + 2 * dl + 3);
        query = filled((size_t)qsize);
        n = pf_event_sign(&ep, ts, frame, prefix, pl, data, dl, body, pl + 2 * dl + 3, query,
                          (size_t)qsize);
        CHECK(n == (int64_t)ref_len);
        CHECK(memcmp(body, ref, ref_len) == 0 && untouched(body + ref_len, pl + 2 * dl + 3 - ref_len));
        CHECK(memcmp(query, refq, (size_t)qsize) == 0);
        free(body);
        free(query);

        /* The unsigned variant: same body, and the query's tail. */
        tsize = (size_t)qsize - (PF_SIGN_FIXED_LEN - PF_EVENT_TAIL_FIXED_LEN) - kl;
        body = filled(ref_len);
        tail = filled(tsize);
        n = pf_event_frame(ts, frame, prefix, pl, data, dl, body, ref_len, tail, tsize);
        CHECK(n == (int64_t)ref_len);
        CHECK(memcmp(body, ref, ref_len) == 0);
        CHECK(memcmp(tail, refq + (size_t)qsize - tsize, tsize) == 0);
        free(body);
        free(tail);

        /* One byte short, in either buffer: refused before anything is written. */
        shortb = filled(ref_len - 1);
        query = filled((size_t)qsize);
        CHECK(pf_event_sign(&ep, ts, frame, prefix, pl, data, dl, shortb, ref_len - 1, query,
                            (size_t)qsize) == PF_ERR_BUFFER);
        CHECK(untouched(shortb, ref_len - 1) && untouched(query, (size_t)qsize));
        free(query);
        body = filled(ref_len);
        query = filled((size_t)qsize - 1);
        CHECK(pf_event_sign(&ep, ts, frame, prefix, pl, data, dl, body, ref_len, query,
                            (size_t)qsize - 1) == PF_ERR_BUFFER);
        CHECK(untouched(body, ref_len) && untouched(query, (size_t)qsize - 1));
        free(query);
        tail = filled(tsize - 1);
        CHECK(pf_event_frame(ts, frame, prefix, pl, data, dl, body, ref_len, tail, tsize - 1)
              == PF_ERR_BUFFER);
        CHECK(untouched(body, ref_len) && untouched(tail, tsize - 1));
        CHECK(pf_event_frame(ts, frame, prefix, pl, data, dl, shortb, ref_len - 1, tail, tsize)
              == PF_ERR_BUFFER);
        CHECK(untouched(shortb, ref_len - 1));
        free(tail);
        free(body);
        free(shortb);

        /* "Now": a 10-digit timestamp, and the query of exactly that size. */
        body = filled(ref_len);
        query = filled(PF_SIGN_FIXED_LEN + kl + 10);
        n = pf_event_sign(&ep, -1, frame, prefix, pl, data, dl, body, ref_len, query,
                          PF_SIGN_FIXED_LEN + kl + 10);
        CHECK(n == (int64_t)ref_len && memcmp(body, ref, ref_len) == 0);
        free(body);
        free(query);

        free(ref);
        free(refq);
        free(secret);
        free(key);
        free(prefix);
        free(data);
        free(path);
    }
}

static void test_event_arguments(void)
{
    pf_hmac_ctx ctx;
    pf_endpoint ep;
    char body[64], query[256], tail[128];

    CHECK(pf_hmac_init(&ctx, "s", 1) == PF_OK);
    CHECK(pf_endpoint_init(&ep, &ctx, "POST", 4, "/p", 2, "k", 1) == PF_OK);
    CHECK(pf_event_sign(NULL, 1, 0, "", 0, "", 0, body, 64, query, 256) == PF_ERR_ARG);
    CHECK(pf_event_sign(&ep, 1, 0, NULL, 1, "", 0, body, 64, query, 256) == PF_ERR_ARG);
    CHECK(pf_event_sign(&ep, 1, 0, "", 0, NULL, 1, body, 64, query, 256) == PF_ERR_ARG);
    CHECK(pf_event_sign(&ep, 1, 0, "", 0, "", 0, NULL, 64, query, 256) == PF_ERR_ARG);
    CHECK(pf_event_sign(&ep, 1, 0, "", 0, "", 0, body, 64, NULL, 256) == PF_ERR_ARG);
    CHECK(pf_event_sign(&ep, 1, 3, "", 0, "", 0, body, 64, query, 256) == PF_ERR_FRAME);
    CHECK(pf_event_sign(&ep, 1, -1, "", 0, "", 0, body, 64, query, 256) == PF_ERR_FRAME);
    CHECK(pf_event_frame(1, 0, "", 0, "", 0, body, 64, NULL, 128) == PF_ERR_ARG);
    CHECK(pf_event_frame(1, 7, "", 0, "", 0, body, 64, tail, 128) == PF_ERR_FRAME);
    CHECK(pf_event_body_size(0, "", SIZE_MAX, "", 0) == PF_ERR_ARG);
    /* NULL data with length 0 is an empty value. */
    CHECK(pf_event_sign(&ep, 5, PF_FRAME_JSON, NULL, 0, NULL, 0, body, 64, query, 256) == 1);
    CHECK(body[0] == '}');
}

static void test_clock(void)
{
    int64_t before, now, after;

    CHECK(pf_round_ns(0) == 0);
    CHECK(pf_round_ns(-1) == PF_ERR_TIMESTAMP);
    CHECK(pf_round_ns(INT64_C(500000000)) == 0);            /* 0.5 -> 0, to even */
    CHECK(pf_round_ns(INT64_C(1500000000)) == 2);           /* 1.5 -> 2 */
    CHECK(pf_round_ns(INT64_C(2500000000)) == 2);           /* 2.5 -> 2 */
    CHECK(pf_round_ns(INT64_C(2500000001)) == 3);
    CHECK(pf_round_ns(INT64_C(1353088179400000000)) == INT64_C(1353088179));
    CHECK(pf_round_ns(INT64_C(1353088179500000000)) == INT64_C(1353088180));
    CHECK(pf_round_ns(INT64_C(1353088180500000000)) == INT64_C(1353088180));
    CHECK(pf_round_ns(INT64_C(1353088179600000000)) == INT64_C(1353088180));
    CHECK(pf_round_ns(INT64_MAX) == INT64_C(9223372037));
    before = (int64_t)time(NULL);
    now = pf_now();
    after = (int64_t)time(NULL);
    CHECK(now >= before && now <= after + 1);
}

/* ---- implementations agree ------------------------------------------------------------------ */

static void cross_check_streaming(void)
{
    /* One-shot vs. byte-split streaming, every length up to a few blocks. */
    static char data[300];
    size_t len, cut;
    fill(data, sizeof data);
    for (len = 0; len <= sizeof data; len += 1) {
        unsigned char a[32], b[32];
        pf_sha256_ctx s;
        char *in = exact(data, len);
        pf_sha256_init(&s);
        pf_sha256_update(&s, (const unsigned char *)in, len);
        pf_sha256_final(&s, a);
        cut = len ? (size_t)(rng() % len) : 0;
        pf_sha256_init(&s);
        pf_sha256_update(&s, (const unsigned char *)in, cut);
        pf_sha256_update(&s, (const unsigned char *)in + cut, len - cut);
        pf_sha256_final(&s, b);
        CHECK(memcmp(a, b, 32) == 0);
        free(in);
    }
}

static void cross_check_impls(void)
{
    static char data[4200];
    size_t len;
    int have_shani = pf_sha256_use(PF_SHA256_SHANI) == PF_SHA256_SHANI;
    fill(data, sizeof data);
    if (!have_shani) {
        printf("SHA-NI not available: portable implementation only\n");
        return;
    }
    for (len = 0; len <= sizeof data; len += (len < 300 ? 1 : 97)) {
        char a[65], b[65];
        CHECK(pf_sha256_use(PF_SHA256_PORTABLE) == PF_SHA256_PORTABLE);
        hmac_hex_str(data + 7, len % 150, data, len, a);
        CHECK(pf_sha256_use(PF_SHA256_SHANI) == PF_SHA256_SHANI);
        hmac_hex_str(data + 7, len % 150, data, len, b);
        CHECK(memcmp(a, b, 64) == 0);
    }
}

static void run_all(const char *label, int fuzz_rounds)
{
    int before = failures;
    test_sha256_vectors();
    test_md5_vectors();
    test_hmac_vectors();
    test_sign_worked_example();
    test_endpoint();
    test_auth();
    test_bad_arguments();
    cross_check_streaming();
    fuzz_sign(fuzz_rounds);
    test_event_arguments();
    fuzz_event(fuzz_rounds / 4 + 1);
    printf("%-9s %s\n", label, failures == before ? "ok" : "FAILED");
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3000;
    int best;

    pf_cpu_init();
    best = pf_sha256_impl();
    CHECK(pf_sha256_use(PF_SHA256_PORTABLE) == PF_SHA256_PORTABLE);
    run_all("portable", rounds);
    if (pf_sha256_use(PF_SHA256_SHANI) == PF_SHA256_SHANI)
        run_all("sha-ni", rounds);
    cross_check_impls();
    test_clock();
    CHECK(pf_sha256_use(-1) == best);
    CHECK(pf_sha256_use(42) == -1);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
