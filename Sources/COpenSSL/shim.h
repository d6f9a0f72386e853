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
#endif
