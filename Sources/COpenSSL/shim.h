// OpenSSL 3 (libssl-dev). Many OpenSSL entry points are macros, which Swift cannot
// call; each one FedMerge needs is wrapped here as a static inline function.
#ifndef FEDMERGE_COPENSSL_SHIM_H
#define FEDMERGE_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/kdf.h>

static inline int fm_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int fm_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long fm_BIO_get_mem_data(BIO *bio, char **pp) {
    return BIO_get_mem_data(bio, pp);
}
static inline int fm_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline long fm_BIO_reset(BIO *bio) {
    return (long)BIO_reset(bio);
}
static inline size_t fm_BIO_pending(BIO *bio) {
    return (size_t)BIO_ctrl_pending(bio);
}
/* Memory BIOs report "retry" rather than EOF when empty, which is what a TLS engine
   fed frame by frame needs. */
static inline void fm_BIO_set_mem_eof_return(BIO *bio, int value) {
    (void)BIO_set_mem_eof_return(bio, value);
}
static inline long fm_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return (long)SSL_CTX_set_mode(ctx, mode);
}
/* EVP_EC_gen is a macro over a variadic function; Swift can call neither. */
static inline EVP_PKEY *fm_EVP_EC_gen_P256(void) {
    return EVP_EC_gen("P-256");
}
static inline void fm_X509V3_set_ctx_nodb(X509V3_CTX *ctx) {
    X509V3_set_ctx_nodb(ctx);
}

/* ---- Frame BIO -------------------------------------------------------------------------
   A BIO that carries TLS records between an SSL object and ZeroMQ frames with fewer copies
   than a pair of memory BIOs: input is *borrowed* from the received frame (no copy in), and
   output accumulates in one malloc'd buffer that is handed whole to zmq_msg_init_data (no
   copy out, no zero-fill on growth). Used by Sources/Protocol/TLSSession.swift. */
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *in;   /* unread input: borrowed frame bytes, or `owned_in` */
    size_t in_len;
    unsigned char *owned_in;   /* copy of leftovers that must outlive their frame */
    int in_is_owned;           /* `in` points into owned_in */
    unsigned char *out;        /* records produced, not yet taken */
    size_t out_len;
    size_t out_cap;
} fm_frame_bio_state;

static inline fm_frame_bio_state *fm_frame_state(BIO *bio) {
    return (fm_frame_bio_state *)BIO_get_data(bio);
}

static inline int fm_frame_bio_reserve(BIO *bio, size_t extra) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    if (s->out_len + extra <= s->out_cap) return 1;
    size_t cap = s->out_cap ? s->out_cap : 16384;
    while (cap < s->out_len + extra) cap *= 2;
    unsigned char *grown = (unsigned char *)realloc(s->out, cap);
    if (grown == NULL) return 0;
    s->out = grown;
    s->out_cap = cap;
    return 1;
}

static int fm_frame_bio_write(BIO *bio, const char *data, size_t len, size_t *written) {
    BIO_clear_retry_flags(bio);
    if (!fm_frame_bio_reserve(bio, len)) { *written = 0; return 0; }
    fm_frame_bio_state *s = fm_frame_state(bio);
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    *written = len;
    return 1;
}

static int fm_frame_bio_read(BIO *bio, char *data, size_t len, size_t *readbytes) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    BIO_clear_retry_flags(bio);
    if (s->in_len == 0) {
        BIO_set_retry_read(bio);   /* "wait for the next frame", not end of stream */
        *readbytes = 0;
        return 0;
    }
    size_t n = len < s->in_len ? len : s->in_len;
    memcpy(data, s->in, n);
    s->in += n;
    s->in_len -= n;
    *readbytes = n;
    return 1;
}

static long fm_frame_bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    (void)num; (void)ptr;
    fm_frame_bio_state *s = fm_frame_state(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return (long)s->in_len;
    case BIO_CTRL_WPENDING: return (long)s->out_len;
    default: return 0;
    }
}

static int fm_frame_bio_create(BIO *bio) {
    fm_frame_bio_state *s = (fm_frame_bio_state *)calloc(1, sizeof(fm_frame_bio_state));
    if (s == NULL) return 0;
    BIO_set_data(bio, s);
    BIO_set_init(bio, 1);
    return 1;
}

static int fm_frame_bio_destroy(BIO *bio) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    if (s != NULL) {
        free(s->owned_in);
        free(s->out);
        free(s);
        BIO_set_data(bio, NULL);
    }
    return 1;
}

/* Creates the method table; call once (Swift keeps it in a lazy global). */
static inline BIO_METHOD *fm_frame_bio_method_new(void) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fedmerge zeromq frame");
    if (m == NULL) return NULL;
    BIO_meth_set_write_ex(m, fm_frame_bio_write);
    BIO_meth_set_read_ex(m, fm_frame_bio_read);
    BIO_meth_set_ctrl(m, fm_frame_bio_ctrl);
    BIO_meth_set_create(m, fm_frame_bio_create);
    BIO_meth_set_destroy(m, fm_frame_bio_destroy);
    return m;
}

/* Lends `len` bytes of a received frame to the SSL object (valid until fm_frame_bio_detach_input). */
static inline void fm_frame_bio_lend_input(BIO *bio, const void *data, size_t len) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    if (s->in_len != 0) {
        /* Leftovers from an earlier frame come first: join them (rare; only split records). */
        unsigned char *joined = (unsigned char *)malloc(s->in_len + len);
        if (joined == NULL) return;
        memcpy(joined, s->in, s->in_len);
        memcpy(joined + s->in_len, data, len);
        free(s->owned_in);
        s->owned_in = joined;
        s->in = joined;
        s->in_len += len;
        s->in_is_owned = 1;
        return;
    }
    s->in = (const unsigned char *)data;
    s->in_len = len;
    s->in_is_owned = 0;
}

/* Before the lent frame is released: copy what OpenSSL has not read yet. Returns 0 on OOM. */
static inline int fm_frame_bio_detach_input(BIO *bio) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    if (s->in_len == 0) {
        s->in = NULL;
        s->in_is_owned = 0;
        return 1;
    }
    if (s->in_is_owned) return 1;
    unsigned char *copy = (unsigned char *)malloc(s->in_len);
    if (copy == NULL) return 0;
    memcpy(copy, s->in, s->in_len);
    free(s->owned_in);
    s->owned_in = copy;
    s->in = copy;
    s->in_is_owned = 1;
    return 1;
}

static inline size_t fm_frame_bio_output_length(BIO *bio) {
    return fm_frame_state(bio)->out_len;
}

/* Hands the output buffer (malloc'd; `*cap` bytes) to the caller; the BIO starts a new one. */
static inline void *fm_frame_bio_take_output(BIO *bio, size_t *len, size_t *cap) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    void *out = s->out;
    *len = s->out_len;
    *cap = s->out_cap;
    s->out = NULL;
    s->out_len = 0;
    s->out_cap = 0;
    return out;
}

static inline size_t fm_frame_bio_output_capacity(BIO *bio) {
    return fm_frame_state(bio)->out_cap;
}

/* With no output pending, installs `buffer` (malloc'd, `cap` bytes) as the output buffer and
   returns the previous one (or NULL) with its capacity in *old_cap, for the caller to recycle.
   With output pending, changes nothing and returns `buffer` itself. */
static inline void *fm_frame_bio_swap_output(BIO *bio, void *buffer, size_t cap, size_t *old_cap) {
    fm_frame_bio_state *s = fm_frame_state(bio);
    if (s->out_len != 0) { *old_cap = cap; return buffer; }
    void *old = s->out;
    *old_cap = s->out_cap;
    s->out = (unsigned char *)buffer;
    s->out_cap = cap;
    return old;
}
#endif
