/* pusher_fast native API: the contract between csrc/ and Python.
 *
 * build_ffi.py hands this file to cffi's cdef() with the preprocessor lines
 * removed, so everything outside them must stay plain declarations.
 *
 * Conventions: every input is a pointer plus a length (a NULL pointer is
 * allowed only with length 0; no length may exceed SIZE_MAX/16 or 2**56);
 * every output goes to a caller-provided buffer whose size is passed and
 * checked before anything is written; nothing is allocated; errors are
 * negative PF_ERR_* codes.  All functions are reentrant and thread-safe
 * (a pf_hmac_ctx is read-only once initialised), except pf_sha256_use,
 * which is meant for tests.
 */
#ifndef PF_FFI_H
#define PF_FFI_H
#include <stddef.h>
#include <stdint.h>

enum {
    PF_OK = 0,
    PF_ERR_ARG = -1,            /* NULL pointer with a length, or a length over the limit */
    PF_ERR_BUFFER = -2,         /* output buffer too small (nothing written) */
    PF_ERR_TIMESTAMP = -3,      /* timestamp < 0 */
    PF_ERR_EXTRA_FORM = -4,     /* an extra parameter is not key=value with a non-empty key */
    PF_ERR_EXTRA_RESERVED = -5, /* an extra parameter uses an auth_* / body_md5 name */
    PF_ERR_EXTRA_ORDER = -6,    /* extra keys not strictly increasing (bytewise) */
    PF_ERR_SOCKET_ID = -7,      /* socket id is not ASCII digits '.' ASCII digits */
    PF_ERR_CHANNEL = -8,        /* channel is not 1-200 characters of [-a-zA-Z0-9_=@,.;] */
    PF_ERR_CLOCK = -9,          /* "now" asked, but the clock is unreadable or not a 10-digit time */
    PF_ERR_FRAME = -10,         /* unknown PF_FRAME_* value */

    PF_HMAC_HEX_LEN = 64,
    PF_SHA256_HEX_LEN = 64,
    PF_MD5_HEX_LEN = 32,
    /* sign_query output = PF_SIGN_FIXED_LEN + key_len + digits(timestamp)
     *                     + (extra_len ? extra_len + 1 : 0) */
    PF_SIGN_FIXED_LEN = 164,
    PF_TIMESTAMP_MAX_DIGITS = 19,

    PF_SHA256_PORTABLE = 0,
    PF_SHA256_SHANI = 1,

    /* How pf_event_sign / pf_event_frame frame a request body from a prefix
     * and the data's JSON text (see there). */
    PF_FRAME_STRING = 0,        /* prefix '"' escaped(data) '"}'  (data embedded as a JSON string) */
    PF_FRAME_JSON = 1,          /* prefix data '}'                (data already a JSON value) */
    PF_FRAME_BATCH = 2,         /* prefix data ']}'               (prefix '{"batch":[', data f1,f2,..) */
    /* pf_event_frame's tail = PF_EVENT_TAIL_FIXED_LEN + digits(timestamp) bytes:
     * "auth_timestamp=TS&auth_version=1.0&body_md5=MD5" */
    PF_EVENT_TAIL_FIXED_LEN = 74
};

/* HMAC-SHA256 key schedule: SHA-256 chain values after the ipad and opad
 * blocks, so each message costs only its own blocks plus one outer block. */
typedef struct {
    uint32_t inner[8];
    uint32_t outer[8];
} pf_hmac_ctx;

/* Derives ctx from a secret of any length (longer than 64 bytes: hashed first). */
int pf_hmac_init(pf_hmac_ctx *ctx, const char *secret, size_t secret_len);

/* Lowercase hex HMAC-SHA256(secret, msg) into out[0..64).  Returns 64. */
int pf_hmac_hex(const pf_hmac_ctx *ctx, const char *msg, size_t msg_len,
                char *out, size_t out_len);

/* 1 if sig is exactly the lowercase hex HMAC of msg, else 0 (wrong length or
 * case included); the comparison does not depend on where bytes differ. */
int pf_hmac_verify(const pf_hmac_ctx *ctx, const char *msg, size_t msg_len,
                   const char *sig, size_t sig_len);

/* Lowercase hex digests into out.  Return 32 / 64. */
int pf_md5_hex(const char *data, size_t len, char *out, size_t out_len);
int pf_sha256_hex(const char *data, size_t len, char *out, size_t out_len);

/* The signed query string of a Pusher REST request:
 *   auth_key=KEY, auth_signature=HEX, auth_timestamp=TS, auth_version=1.0,
 *   body_md5=MD5(body) and the `extra` parameters, sorted by key (bytewise)
 *   and joined with '&', where HEX = HMAC(method "\n" path "\n" the same
 *   query without auth_signature).  `extra` is "k=v&k=v" already sorted, or
 *   empty; it is validated here (PF_ERR_EXTRA_*).  Returns the number of
 *   bytes written to out (no NUL terminator) or a PF_ERR_* code. */
int64_t pf_sign_query(const pf_hmac_ctx *ctx,
                      const char *method, size_t method_len,
                      const char *path, size_t path_len,
                      const char *key, size_t key_len,
                      int64_t timestamp,
                      const char *extra, size_t extra_len,
                      const char *body, size_t body_len,
                      char *out, size_t out_len);

/* Channel authorization: writes key ":" HEX into out, where HEX is the hex
 * HMAC of socket_id ":" channel, or of socket_id ":" channel ":" data when
 * data_len > 0 (presence channel_data).  Checks first that socket_id is ASCII
 * digits, '.', ASCII digits (PF_ERR_SOCKET_ID: what stops "1.1:private-x"
 * from forging another channel's signature) and that channel is 1-200
 * characters of the channel alphabet (PF_ERR_CHANNEL).  Returns the bytes
 * written (key_len + 65) or a PF_ERR_* code. */
int64_t pf_channel_auth(const pf_hmac_ctx *ctx, const char *key, size_t key_len,
                        const char *socket_id, size_t socket_id_len,
                        const char *channel, size_t channel_len,
                        const char *data, size_t data_len,
                        char *out, size_t out_len);

/* User sign-in: key ":" hex HMAC of socket_id "::user::" user_data, with the
 * same socket id check.  Returns key_len + 65 or a PF_ERR_* code. */
int64_t pf_user_auth(const pf_hmac_ctx *ctx, const char *key, size_t key_len,
                     const char *socket_id, size_t socket_id_len,
                     const char *user_data, size_t user_data_len,
                     char *out, size_t out_len);

/* One endpoint's fixed signing inputs (context, method, path, key), set once,
 * so each request crosses into C with six arguments instead of fourteen. */
enum { PF_ENDPOINT_MAX_METHOD = 8, PF_ENDPOINT_MAX_PATH = 480, PF_ENDPOINT_MAX_KEY = 256 };
typedef struct {
    pf_hmac_ctx hmac;
    size_t method_len, path_len, key_len;
    char method[PF_ENDPOINT_MAX_METHOD];
    char path[PF_ENDPOINT_MAX_PATH];
    char key[PF_ENDPOINT_MAX_KEY];
} pf_endpoint;

/* Copies the inputs into ep (PF_ERR_ARG if one is longer than its PF_ENDPOINT_MAX_*). */
int pf_endpoint_init(pf_endpoint *ep, const pf_hmac_ctx *ctx,
                     const char *method, size_t method_len,
                     const char *path, size_t path_len,
                     const char *key, size_t key_len);

/* pf_sign_query for ep's method, path and key, with no extra parameters. */
int64_t pf_endpoint_sign(const pf_endpoint *ep, int64_t timestamp,
                         const char *body, size_t body_len, char *out, size_t out_len);

/* Exact output size of pf_sign_query for these inputs, or a PF_ERR_* code. */
int64_t pf_sign_query_size(size_t key_len, int64_t timestamp, size_t extra_len);

/* round(time.time()) exactly as CPython computes it from the same
 * clock_gettime(CLOCK_REALTIME) reading: nanoseconds -> double seconds (an
 * integer division when the nanoseconds are whole seconds, else
 * (double)ns / 1e9), then round half to even.  PF_ERR_CLOCK where there is
 * no such clock or the time is not 10 digits (before 2001 or after 2286). */
int64_t pf_now(void);

/* The conversion step of pf_now, for a given count of nanoseconds >= 0
 * (PF_ERR_TIMESTAMP if negative); exposed so tests can compare it with Python. */
int64_t pf_round_ns(int64_t ns);

/* One C call per trigger or batch.  Frames the request body into body (see
 * PF_FRAME_*; in PF_FRAME_STRING, '\\' and '"' in data are escaped with a
 * backslash and nothing else is touched, so data must hold no raw control
 * characters, as orjson's output never does), then writes the signed query
 * of ep for that body into query, exactly as pf_endpoint_sign would.
 * timestamp < 0 means pf_now() (PF_ERR_CLOCK passed on).  Both sizes are
 * checked before anything is written (PF_ERR_BUFFER): the body needs
 * pf_event_body_size(...) bytes, the query pf_sign_query_size(key_len, ts, 0)
 * (for "now", always a 10-digit ts).  Returns the body length. */
int64_t pf_event_sign(const pf_endpoint *ep, int64_t timestamp, int frame,
                      const char *prefix, size_t prefix_len,
                      const char *data, size_t data_len,
                      char *body, size_t body_cap, char *query, size_t query_cap);

/* The same framing, without the signature: writes the body, and into tail
 * "auth_timestamp=TS&auth_version=1.0&body_md5=MD5" (the part of an
 * endpoint's query after auth_signature), so that the caller can compute the
 * HMAC elsewhere (OpenSSL, on CPUs where our SHA-256 has no hardware path).
 * Returns the body length; the tail is PF_EVENT_TAIL_FIXED_LEN + digits(ts). */
int64_t pf_event_frame(int64_t timestamp, int frame,
                       const char *prefix, size_t prefix_len,
                       const char *data, size_t data_len,
                       char *body, size_t body_cap, char *tail, size_t tail_cap);

/* Exact body size pf_event_sign / pf_event_frame will write, or a PF_ERR_* code. */
int64_t pf_event_body_size(int frame, const char *prefix, size_t prefix_len,
                           const char *data, size_t data_len);

/* SHA-256 block implementation in use (PF_SHA256_*).  pf_sha256_use selects
 * one (-1: the best this CPU offers) and returns it, or -1 if unavailable; it
 * must not run while other threads hash.  pf_cpu_init picks the best; it runs
 * automatically at load time where the compiler supports constructors. */
int pf_sha256_impl(void);
int pf_sha256_use(int impl);
void pf_cpu_init(void);

#endif
