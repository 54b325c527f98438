/* MD5 (RFC 1321), one-shot.  Internal header of pusher_fast. */
#ifndef PF_MD5_H
#define PF_MD5_H

#include <stddef.h>

#define PF_MD5_DIGEST 16

#include <stdint.h>

/* The digest as four words; its bytes are each word little-endian in turn. */
void pf_md5(const unsigned char *p, size_t len, uint32_t st[4]);

#endif
