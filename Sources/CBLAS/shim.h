// CBLAS + LAPACKE from Debian's OpenBLAS (libopenblas-dev, liblapacke-dev).
// LAPACK's complex types are not needed by FedMerge; the real routines import cleanly.
#ifndef FEDMERGE_CBLAS_SHIM_H
#define FEDMERGE_CBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
