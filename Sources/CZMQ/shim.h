// libzmq (libzmq3-dev). Wrappers for what Swift cannot import directly live here.
#ifndef FEDMERGE_CZMQ_SHIM_H
#define FEDMERGE_CZMQ_SHIM_H
#include <zmq.h>
#include <stdlib.h>

/* zmq_free_fn for buffers malloc'd elsewhere (TLS output handed to zmq_msg_init_data). */
static void fm_zmq_free_malloced(void *data, void *hint) {
    (void)hint;
    free(data);
}
static inline zmq_free_fn *fm_zmq_free_malloced_fn(void) {
    return fm_zmq_free_malloced;
}
#endif
