// libzmq (libzmq3-dev). Wrappers for what Swift cannot import directly live here.
#ifndef FEDMERGE_CZMQ_SHIM_H
#define FEDMERGE_CZMQ_SHIM_H
#include <zmq.h>
#endif
