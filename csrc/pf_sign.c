/* HMAC-SHA256, hex encoding and the Pusher request signer (see pf_ffi.h). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c99 */
#endif
#include "pf_ffi.h"

#include <string.h>
#include <time.h>

#include "pf_md5.h"
#include "pf_sha256.h"

/* Bounds every input so that sums of a few lengths, and bit counts, cannot
 * overflow size_t, int64_t or SHA-256's 64-bit length field. */
#if SIZE_MAX > 0xffffffffu
#define PF_MAX_INPUT ((size_t)1 << 56)
#else
#define PF_MAX_INPUT (SIZE_MAX / 16)
#endif

static int valid_input(const char *p, size_t len)
{
    return (p != NULL || len == 0) && len <= PF_MAX_INPUT;
}

/* Eight lowercase hex digits of v, most significant first, without a table
 * (so also without secret-dependent memory access). */
static inline void hex32(char *out, uint32_t v)
{
    uint64_t x = v, ten;

    /* Spread the nibbles into bytes: byte k (from the low end) = nibble k. */
    x = (x | (x << 16)) & UINT64_C(0x0000FFFF0000FFFF);
    x = (x | (x << 8)) & UINT64_C(0x00FF00FF00FF00FF);
    x = (x | (x << 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    ten = ((x + UINT64_C(0x0606060606060606)) >> 4) & UINT64_C(0x0101010101010101);
    x += UINT64_C(0x3030303030303030) + ten * 39; /* '0'+n, or 'a'+n-10 */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
    memcpy(out, &x, 8);
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    memcpy(out, &x, 8);
#else
    out[0] = (char)(x >> 56);
    out[1] = (char)(x >> 48);
    out[2] = (char)(x >> 40);
    out[3] = (char)(x >> 32);
    out[4] = (char)(x >> 24);
    out[5] = (char)(x >> 16);
    out[6] = (char)(x >> 8);
    out[7] = (char)x;
#endif
}

static void hex_words_be(char *out, const uint32_t *w, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        hex32(out + 8 * i, w[i]);
}

/* MD5 digest words are little-endian: swap so hex32 prints bytes in order. */
static void hex_md5(char *out, const uint32_t st[4])
{
    size_t i;
    for (i = 0; i < 4; i++) {
        uint32_t v = st[i];
        hex32(out + 8 * i, (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24));
    }
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = (volatile unsigned char *)p;
    while (n--)
        *v++ = 0;
}

/* ---- HMAC-SHA256 ----------------------------------------------------------- */

int pf_hmac_init(pf_hmac_ctx *ctx, const char *secret, size_t secret_len)
{
    unsigned char k[PF_SHA256_BLOCK], pad[PF_SHA256_BLOCK];
    size_t i;

    if (ctx == NULL || !valid_input(secret, secret_len))
        return PF_ERR_ARG;
    memset(k, 0, sizeof k);
    if (secret_len > PF_SHA256_BLOCK) {
        pf_sha256_ctx s;
        pf_sha256_init(&s);
        pf_sha256_update(&s, (const unsigned char *)secret, secret_len);
        pf_sha256_final(&s, k);
        wipe(&s, sizeof s);
    } else if (secret_len) {
        memcpy(k, secret, secret_len);
    }
    for (i = 0; i < PF_SHA256_BLOCK; i++)
        pad[i] = (unsigned char)(k[i] ^ 0x36);
    memcpy(ctx->inner, pf_sha256_iv, sizeof ctx->inner);
    pf_sha256_blocks(ctx->inner, pad, 1);
    for (i = 0; i < PF_SHA256_BLOCK; i++)
        pad[i] = (unsigned char)(k[i] ^ 0x5c);
    memcpy(ctx->outer, pf_sha256_iv, sizeof ctx->outer);
    pf_sha256_blocks(ctx->outer, pad, 1);
    wipe(k, sizeof k);
    wipe(pad, sizeof pad);
    return PF_OK;
}

static void hmac_start(const pf_hmac_ctx *ctx, pf_sha256_ctx *s)
{
    pf_sha256_resume(s, ctx->inner, PF_SHA256_BLOCK);
}

/* Finishes the inner hash in s and writes the 64 hex digits of the MAC. */
static void hmac_finish_hex(const pf_hmac_ctx *ctx, pf_sha256_ctx *s, char out[64])
{
    /* The outer message is always one block: the inner digest, the 0x80
     * terminator, zeros and the bit length of ipad-block + digest (768). */
    unsigned char block[PF_SHA256_BLOCK];
    uint32_t h[8];
    int i;

    pf_sha256_finish(s);
    for (i = 0; i < 8; i++)
        pf_store_be32(block + 4 * i, s->h[i]);
    block[32] = 0x80;
    memset(block + 33, 0, PF_SHA256_BLOCK - 33);
    block[62] = 0x03;
    memcpy(h, ctx->outer, sizeof h);
    pf_sha256_blocks(h, block, 1);
    hex_words_be(out, h, 8);
}

int pf_hmac_hex(const pf_hmac_ctx *ctx, const char *msg, size_t msg_len, char *out, size_t out_len)
{
    pf_sha256_ctx s;

    if (ctx == NULL || !valid_input(msg, msg_len) || out == NULL)
        return PF_ERR_ARG;
    if (out_len < PF_HMAC_HEX_LEN)
        return PF_ERR_BUFFER;
    hmac_start(ctx, &s);
    pf_sha256_update(&s, (const unsigned char *)msg, msg_len);
    hmac_finish_hex(ctx, &s, out);
    return PF_HMAC_HEX_LEN;
}

int pf_hmac_verify(const pf_hmac_ctx *ctx, const char *msg, size_t msg_len,
                   const char *sig, size_t sig_len)
{
    char expect[PF_HMAC_HEX_LEN];
    unsigned diff = 0;
    size_t i;

    if (ctx == NULL || !valid_input(msg, msg_len) || !valid_input(sig, sig_len))
        return PF_ERR_ARG;
    if (sig_len != PF_HMAC_HEX_LEN) /* the length is public; the digits are not */
        return 0;
    (void)pf_hmac_hex(ctx, msg, msg_len, expect, sizeof expect);
    for (i = 0; i < PF_HMAC_HEX_LEN; i++)
        diff |= (unsigned)(unsigned char)(expect[i] ^ sig[i]);
    return (int)(1 & ((diff - 1) >> 8));
}

/* ---- plain digests --------------------------------------------------------- */

int pf_md5_hex(const char *data, size_t len, char *out, size_t out_len)
{
    uint32_t st[4];

    if (!valid_input(data, len) || out == NULL)
        return PF_ERR_ARG;
    if (out_len < PF_MD5_HEX_LEN)
        return PF_ERR_BUFFER;
    pf_md5((const unsigned char *)data, len, st);
    hex_md5(out, st);
    return PF_MD5_HEX_LEN;
}

int pf_sha256_hex(const char *data, size_t len, char *out, size_t out_len)
{
    pf_sha256_ctx s;

    if (!valid_input(data, len) || out == NULL)
        return PF_ERR_ARG;
    if (out_len < PF_SHA256_HEX_LEN)
        return PF_ERR_BUFFER;
    pf_sha256_init(&s);
    pf_sha256_update(&s, (const unsigned char *)data, len);
    pf_sha256_finish(&s);
    hex_words_be(out, s.h, 8);
    return PF_SHA256_HEX_LEN;
}

/* ---- request signing ------------------------------------------------------- */

/* The signer's own parameters, in sorted order.  Every extra key is compared
 * against these names to place it; all five are also reserved. */
enum { P_KEY, P_SIGNATURE, P_TIMESTAMP, P_VERSION, P_BODY_MD5, P_COUNT };

static const struct {
    const char *name;
    size_t len;
} FIXED[P_COUNT] = {
    { "auth_key", 8 },
    { "auth_signature", 14 },
    { "auth_timestamp", 14 },
    { "auth_version", 12 },
    { "body_md5", 8 },
};

/* Bytewise order of UTF-8 text, which is code point order. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Writes v in decimal to out (room for 19 digits: v < 2**63), returns its length. */
static size_t write_decimal(char *out, uint64_t v)
{
    char tmp[PF_TIMESTAMP_MAX_DIGITS];
    size_t n = 0;
    do {
        tmp[PF_TIMESTAMP_MAX_DIGITS - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + PF_TIMESTAMP_MAX_DIGITS - n, n);
    return n;
}

static size_t decimal_digits(uint64_t v)
{
    uint64_t p = 10;
    size_t n = 1;
    while (n < PF_TIMESTAMP_MAX_DIGITS && v >= p) {
        p *= 10; /* at most 10**19, which fits */
        n++;
    }
    return n;
}

static inline int64_t query_size(size_t key_len, int64_t timestamp, size_t extra_len)
{
    if (key_len > PF_MAX_INPUT || extra_len > PF_MAX_INPUT)
        return PF_ERR_ARG;
    if (timestamp < 0)
        return PF_ERR_TIMESTAMP;
    return (int64_t)(PF_SIGN_FIXED_LEN + key_len + decimal_digits((uint64_t)timestamp)
                     + (extra_len ? extra_len + 1 : 0));
}

int64_t pf_sign_query_size(size_t key_len, int64_t timestamp, size_t extra_len)
{
    return query_size(key_len, timestamp, extra_len);
}

/* The extra parameter starting at item (before end): its end and its '='.
 * Returns PF_OK or the PF_ERR_EXTRA_* code the item deserves, given the key
 * of the previous item (prev, prev_len; NULL for the first). */
static int parse_extra_item(const char *item, const char *end, const char *prev, size_t prev_len,
                            const char **item_end, const char **eq)
{
    const char *q, *e = NULL;
    size_t klen, i;

    for (q = item; q < end && *q != '&'; q++)
        if (e == NULL && *q == '=')
            e = q;
    *item_end = q;
    *eq = e;
    if (e == NULL || e == item)
        return PF_ERR_EXTRA_FORM;
    klen = (size_t)(e - item);
    for (i = 0; i < P_COUNT; i++)
        if (key_cmp(item, klen, FIXED[i].name, FIXED[i].len) == 0)
            return PF_ERR_EXTRA_RESERVED;
    if (prev != NULL && key_cmp(item, klen, prev, prev_len) <= 0)
        return PF_ERR_EXTRA_ORDER;
    return PF_OK;
}

int64_t pf_sign_query(const pf_hmac_ctx *ctx,
                      const char *method, size_t method_len,
                      const char *path, size_t path_len,
                      const char *key, size_t key_len,
                      int64_t timestamp,
                      const char *extra, size_t extra_len,
                      const char *body, size_t body_len,
                      char *out, size_t out_len)
{
    uint32_t md5[4];
    const char *e, *e_end, *item_end = NULL, *eq = NULL;
    size_t sig_at = 0;
    char *w = out;
    int fixed = 0, rc;
    int64_t size;
    pf_sha256_ctx s;

    if (ctx == NULL || out == NULL || !valid_input(method, method_len)
        || !valid_input(path, path_len) || !valid_input(key, key_len)
        || !valid_input(extra, extra_len) || !valid_input(body, body_len))
        return PF_ERR_ARG;
    size = query_size(key_len, timestamp, extra_len);
    if (size < 0)
        return size;
    if (out_len < (size_t)size)
        return PF_ERR_BUFFER;

    pf_md5((const unsigned char *)body, body_len, md5);

    /* Merge the fixed parameters into the (already sorted) extra ones,
     * validating each extra item when it is reached.  The pieces written are
     * exactly those counted by pf_sign_query_size, so w never passes out+size. */
    e = extra_len ? extra : NULL;
    e_end = extra_len ? extra + extra_len : NULL;
    if (e != NULL && (rc = parse_extra_item(e, e_end, NULL, 0, &item_end, &eq)) != PF_OK)
        return rc;
    while (fixed < P_COUNT || e != NULL) {
        int take_fixed = fixed < P_COUNT
            && (e == NULL || key_cmp(FIXED[fixed].name, FIXED[fixed].len, e, (size_t)(eq - e)) < 0);

        if (w != out)
            *w++ = '&';
        if (take_fixed) {
            /* Constant-length copies, which the compiler turns into moves. */
            switch (fixed) {
            case P_KEY:
                memcpy(w, "auth_key=", 9);
                w += 9;
                if (key_len)
                    memcpy(w, key, key_len);
                w += key_len;
                break;
            case P_SIGNATURE:
                memcpy(w, "auth_signature=", 15);
                w += 15;
                sig_at = (size_t)(w - out);
                w += PF_HMAC_HEX_LEN; /* filled in once the rest is hashed */
                break;
            case P_TIMESTAMP:
                memcpy(w, "auth_timestamp=", 15);
                w += 15;
                w += write_decimal(w, (uint64_t)timestamp);
                break;
            case P_VERSION:
                memcpy(w, "auth_version=1.0", 16);
                w += 16;
                break;
            default:
                memcpy(w, "body_md5=", 9);
                w += 9;
                hex_md5(w, md5);
                w += PF_MD5_HEX_LEN;
                break;
            }
            fixed++;
        } else {
            const char *key_at = e;
            size_t n = (size_t)(item_end - e);
            memcpy(w, e, n);
            w += n;
            if (item_end == e_end) {
                e = NULL;
            } else {
                /* After a '&' there is always another item, maybe empty. */
                e = item_end + 1;
                rc = parse_extra_item(e, e_end, key_at, (size_t)(eq - key_at), &item_end, &eq);
                if (rc != PF_OK)
                    return rc;
            }
        }
    }

    /* The string to sign omits auth_signature, which is neither first
     * (auth_key precedes it) nor last (auth_timestamp follows it):
     * out = A "auth_signature=" HEX "&" B, and the query signed is A B. */
    hmac_start(ctx, &s);
    if (method_len)
        pf_sha256_update(&s, (const unsigned char *)method, method_len);
    pf_sha256_update(&s, (const unsigned char *)"\n", 1);
    if (path_len)
        pf_sha256_update(&s, (const unsigned char *)path, path_len);
    pf_sha256_update(&s, (const unsigned char *)"\n", 1);
    {
        size_t a_len = sig_at - (FIXED[P_SIGNATURE].len + 1);
        size_t b_at = sig_at + PF_HMAC_HEX_LEN + 1;
        pf_sha256_update(&s, (const unsigned char *)out, a_len);
        pf_sha256_update(&s, (const unsigned char *)out + b_at, (size_t)(w - out) - b_at);
    }
    hmac_finish_hex(ctx, &s, out + sig_at);
    return (int64_t)(w - out);
}

/* ---- endpoints -------------------------------------------------------------- */

int pf_endpoint_init(pf_endpoint *ep, const pf_hmac_ctx *ctx,
                     const char *method, size_t method_len,
                     const char *path, size_t path_len,
                     const char *key, size_t key_len)
{
    if (ep == NULL || ctx == NULL || !valid_input(method, method_len)
        || !valid_input(path, path_len) || !valid_input(key, key_len)
        || method_len > PF_ENDPOINT_MAX_METHOD || path_len > PF_ENDPOINT_MAX_PATH
        || key_len > PF_ENDPOINT_MAX_KEY)
        return PF_ERR_ARG;
    memset(ep, 0, sizeof *ep);
    ep->hmac = *ctx;
    ep->method_len = method_len;
    ep->path_len = path_len;
    ep->key_len = key_len;
    if (method_len)
        memcpy(ep->method, method, method_len);
    if (path_len)
        memcpy(ep->path, path, path_len);
    if (key_len)
        memcpy(ep->key, key, key_len);
    return PF_OK;
}

int64_t pf_endpoint_sign(const pf_endpoint *ep, int64_t timestamp,
                         const char *body, size_t body_len, char *out, size_t out_len)
{
    if (ep == NULL || ep->method_len > PF_ENDPOINT_MAX_METHOD
        || ep->path_len > PF_ENDPOINT_MAX_PATH || ep->key_len > PF_ENDPOINT_MAX_KEY)
        return PF_ERR_ARG;
    return pf_sign_query(&ep->hmac, ep->method, ep->method_len, ep->path, ep->path_len,
                         ep->key, ep->key_len, timestamp, NULL, 0, body, body_len, out, out_len);
}

/* ---- channel and user authorization ------------------------------------------ */

static int valid_socket_id(const char *p, size_t n)
{
    size_t i, dot = 0, dots = 0;

    for (i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            dot = i;
            dots++;
        } else if (c < '0' || c > '9') {
            return 0;
        }
    }
    return dots == 1 && dot > 0 && dot < n - 1;
}

static int valid_channel(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || n > 200)
        return 0;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '=' || c == '@' || c == ',' || c == '.'
              || c == ';'))
            return 0;
    }
    return 1;
}

/* key ":" HMAC(socket_id sep subject [":" data]) into out (checked sizes). */
static int64_t write_auth(const pf_hmac_ctx *ctx, const char *key, size_t key_len,
                          const char *socket_id, size_t socket_id_len,
                          const char *sep, size_t sep_len,
                          const char *subject, size_t subject_len,
                          const char *data, size_t data_len,
                          char *out, size_t out_len)
{
    pf_sha256_ctx s;

    if (out_len < key_len + 1 + PF_HMAC_HEX_LEN)
        return PF_ERR_BUFFER;
    hmac_start(ctx, &s);
    pf_sha256_update(&s, (const unsigned char *)socket_id, socket_id_len);
    pf_sha256_update(&s, (const unsigned char *)sep, sep_len);
    if (subject_len)
        pf_sha256_update(&s, (const unsigned char *)subject, subject_len);
    if (data_len) {
        pf_sha256_update(&s, (const unsigned char *)":", 1);
        pf_sha256_update(&s, (const unsigned char *)data, data_len);
    }
    if (key_len)
        memcpy(out, key, key_len);
    out[key_len] = ':';
    hmac_finish_hex(ctx, &s, out + key_len + 1);
    return (int64_t)(key_len + 1 + PF_HMAC_HEX_LEN);
}

int64_t pf_channel_auth(const pf_hmac_ctx *ctx, const char *key, size_t key_len,
                        const char *socket_id, size_t socket_id_len,
                        const char *channel, size_t channel_len,
                        const char *data, size_t data_len,
                        char *out, size_t out_len)
{
    if (ctx == NULL || out == NULL || !valid_input(key, key_len)
        || !valid_input(socket_id, socket_id_len) || !valid_input(channel, channel_len)
        || !valid_input(data, data_len))
        return PF_ERR_ARG;
    if (!valid_socket_id(socket_id, socket_id_len))
        return PF_ERR_SOCKET_ID;
    if (!valid_channel(channel, channel_len))
        return PF_ERR_CHANNEL;
    return write_auth(ctx, key, key_len, socket_id, socket_id_len, ":", 1, channel, channel_len,
                      data, data_len, out, out_len);
}

int64_t pf_user_auth(const pf_hmac_ctx *ctx, const char *key, size_t key_len,
                     const char *socket_id, size_t socket_id_len,
                     const char *user_data, size_t user_data_len,
                     char *out, size_t out_len)
{
    if (ctx == NULL || out == NULL || !valid_input(key, key_len)
        || !valid_input(socket_id, socket_id_len) || !valid_input(user_data, user_data_len))
        return PF_ERR_ARG;
    if (!valid_socket_id(socket_id, socket_id_len))
        return PF_ERR_SOCKET_ID;
    return write_auth(ctx, key, key_len, socket_id, socket_id_len, "::user::", 8, user_data,
                      user_data_len, NULL, 0, out, out_len);
}

/* ---- the clock ----------------------------------------------------------------- */

#define PF_NS_PER_S INT64_C(1000000000)

int64_t pf_round_ns(int64_t ns)
{
    double d, fl, frac;
    int64_t r;

    if (ns < 0)
        return PF_ERR_TIMESTAMP;
    /* CPython's _PyTime_AsSecondsDouble, step for step. */
    if (ns % PF_NS_PER_S == 0)
        d = (double)(ns / PF_NS_PER_S);
    else
        d = (double)ns / 1e9;
    /* float.__round__ with no digits: half to even.  d < 2**34 here, so the
     * truncation is exact and d - fl is computed without rounding. */
    r = (int64_t)d;
    fl = (double)r;
    frac = d - fl;
    if (frac > 0.5 || (frac == 0.5 && (r & 1)))
        r++;
    return r;
}

int64_t pf_now(void)
{
#if defined(CLOCK_REALTIME) && !defined(_WIN32)
    struct timespec ts;
    int64_t r;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return PF_ERR_CLOCK;
    /* Only 10-digit times: the caller sizes the query for them, and a clock
     * outside 2001..2286 is better read by Python, which has the last word. */
    if (ts.tv_sec < 999999999 || ts.tv_sec >= INT64_C(9999999999) || ts.tv_nsec < 0
        || ts.tv_nsec >= PF_NS_PER_S)
        return PF_ERR_CLOCK;
    r = pf_round_ns((int64_t)ts.tv_sec * PF_NS_PER_S + (int64_t)ts.tv_nsec);
    if (r < INT64_C(1000000000) || r >= INT64_C(10000000000))
        return PF_ERR_CLOCK;
    return r;
#else
    return PF_ERR_CLOCK;
#endif
}

/* ---- one call per trigger / batch ------------------------------------------------ */

static const struct {
    const char *text;
    size_t len;
} SUFFIX[3] = {
    { "\"}", 2 }, /* PF_FRAME_STRING, after the opening quote and the escaped data */
    { "}", 1 },   /* PF_FRAME_JSON */
    { "]}", 2 },  /* PF_FRAME_BATCH */
};

/* Occurrences of c in p[0..n), found with memchr (vectorised in every libc). */
static size_t count_char(const char *p, size_t n, int c)
{
    const char *end = p + n;
    size_t k = 0;
    while (p < end && (p = memchr(p, c, (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* Copies p[0..n) to w with '"' and '\\' backslash-escaped; returns the bytes
 * written.  Runs between the characters to escape move with memcpy. */
static size_t write_escaped(char *w, const char *p, size_t n)
{
    const char *end = p + n, *quote, *bslash;
    char *start = w;

    if (n == 0)
        return 0;
    quote = memchr(p, '"', n);
    bslash = memchr(p, '\\', n);
    for (;;) {
        const char *q = quote == NULL ? bslash : (bslash == NULL || quote < bslash ? quote : bslash);
        size_t run = (size_t)((q != NULL ? q : end) - p);
        if (run) {
            memcpy(w, p, run);
            w += run;
        }
        if (q == NULL)
            break;
        *w++ = '\\';
        *w++ = *q;
        p = q + 1;
        /* Only the one just used needs looking for again. */
        if (q == quote)
            quote = p < end ? memchr(p, '"', (size_t)(end - p)) : NULL;
        else
            bslash = p < end ? memchr(p, '\\', (size_t)(end - p)) : NULL;
    }
    return (size_t)(w - start);
}

int64_t pf_event_body_size(int frame, const char *prefix, size_t prefix_len,
                           const char *data, size_t data_len)
{
    size_t n;

    if (!valid_input(prefix, prefix_len) || !valid_input(data, data_len))
        return PF_ERR_ARG;
    if (frame < PF_FRAME_STRING || frame > PF_FRAME_BATCH)
        return PF_ERR_FRAME;
    /* Each length is below 2**56, so this sum cannot overflow. */
    n = prefix_len + data_len + SUFFIX[frame].len;
    if (frame == PF_FRAME_STRING && data_len)
        n += 1 + count_char(data, data_len, '"') + count_char(data, data_len, '\\');
    else if (frame == PF_FRAME_STRING)
        n += 1;
    return (int64_t)n;
}

/* Writes the body, whose exact size the caller has checked against the buffer. */
static size_t write_body(int frame, const char *prefix, size_t prefix_len,
                         const char *data, size_t data_len, char *body)
{
    char *w = body;

    if (prefix_len)
        memcpy(w, prefix, prefix_len);
    w += prefix_len;
    if (frame == PF_FRAME_STRING) {
        *w++ = '"';
        w += write_escaped(w, data, data_len);
    } else if (data_len) {
        memcpy(w, data, data_len);
        w += data_len;
    }
    memcpy(w, SUFFIX[frame].text, SUFFIX[frame].len);
    w += SUFFIX[frame].len;
    return (size_t)(w - body);
}

/* Resolves timestamp (< 0: now) and checks that the body fits: >= 0 or a PF_ERR_* code. */
static int64_t event_prepare(int64_t *timestamp, int frame, const char *prefix, size_t prefix_len,
                             const char *data, size_t data_len, const char *body, size_t body_cap)
{
    int64_t size;

    if (body == NULL || !valid_input(prefix, prefix_len) || !valid_input(data, data_len))
        return PF_ERR_ARG;
    if (frame < PF_FRAME_STRING || frame > PF_FRAME_BATCH)
        return PF_ERR_FRAME;
    if (*timestamp < 0) {
        *timestamp = pf_now();
        if (*timestamp < 0)
            return *timestamp;
    }
    /* Room for the worst case (every data byte escaped) needs no counting;
     * otherwise the exact size decides.  The lengths are below 2**56 each. */
    if (prefix_len + 2 * data_len + 3 <= body_cap)
        return 0;
    size = pf_event_body_size(frame, prefix, prefix_len, data, data_len);
    if (size < 0)
        return size;
    if ((uint64_t)size > body_cap)
        return PF_ERR_BUFFER;
    return size;
}

int64_t pf_event_sign(const pf_endpoint *ep, int64_t timestamp, int frame,
                      const char *prefix, size_t prefix_len,
                      const char *data, size_t data_len,
                      char *body, size_t body_cap, char *query, size_t query_cap)
{
    int64_t size, qsize, n;
    size_t body_len;

    if (ep == NULL || query == NULL || ep->key_len > PF_ENDPOINT_MAX_KEY)
        return PF_ERR_ARG;
    size = event_prepare(&timestamp, frame, prefix, prefix_len, data, data_len, body, body_cap);
    if (size < 0)
        return size;
    qsize = query_size(ep->key_len, timestamp, 0);
    if (qsize < 0)
        return qsize;
    if ((uint64_t)qsize > query_cap)
        return PF_ERR_BUFFER;
    body_len = write_body(frame, prefix, prefix_len, data, data_len, body);
    n = pf_endpoint_sign(ep, timestamp, body, body_len, query, query_cap);
    if (n < 0)
        return n;
    return (int64_t)body_len;
}

int64_t pf_event_frame(int64_t timestamp, int frame,
                       const char *prefix, size_t prefix_len,
                       const char *data, size_t data_len,
                       char *body, size_t body_cap, char *tail, size_t tail_cap)
{
    int64_t size;
    size_t body_len, digits;
    uint32_t md5[4];
    char *w = tail;

    if (tail == NULL)
        return PF_ERR_ARG;
    size = event_prepare(&timestamp, frame, prefix, prefix_len, data, data_len, body, body_cap);
    if (size < 0)
        return size;
    digits = decimal_digits((uint64_t)timestamp);
    if (PF_EVENT_TAIL_FIXED_LEN + digits > tail_cap)
        return PF_ERR_BUFFER;
    body_len = write_body(frame, prefix, prefix_len, data, data_len, body);
    pf_md5((const unsigned char *)body, body_len, md5);
    memcpy(w, "auth_timestamp=", 15);
    w += 15;
    w += write_decimal(w, (uint64_t)timestamp);
    memcpy(w, "&auth_version=1.0&body_md5=", 27);
    w += 27;
    hex_md5(w, md5);
    return (int64_t)body_len;
}
