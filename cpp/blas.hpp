// Declarations of the few BLAS/LAPACK routines fastslow calls, from the scipy-openblas32 wheel.
// Its symbols carry the prefix `scipy_`; integers are 32-bit (LP64 interface).
#pragma once
#include <cstddef>

extern "C" {
// Symmetric tridiagonal eigenproblem (LAPACK dstev). The trailing size_t is the hidden
// Fortran string length of `jobz`.
void scipy_dstev_(const char* jobz, const int* n, double* d, double* e, double* z,
                  const int* ldz, double* work, int* info, std::size_t jobz_len);
}
