// Declarations of the BLAS/LAPACK routines fastslow calls, from the scipy-openblas32 wheel.
// Its symbols carry the prefix `scipy_`; integers are 32-bit (LP64 interface). CBLAS enums are
// passed as their int values (CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112,
// CblasUpper = 121), which is how the C ABI passes them.
#pragma once
#include <cstddef>

extern "C" {
// Symmetric tridiagonal eigenproblem (LAPACK dstev). The trailing size_t is the hidden
// Fortran string length of `jobz`.
void scipy_dstev_(const char* jobz, const int* n, double* d, double* e, double* z,
                  const int* ldz, double* work, int* info, std::size_t jobz_len);
// LU factorisation with partial pivoting and the matching solve (LAPACK dgetrf, dgetrs; column-major).
void scipy_dgetrf_(const int* m, const int* n, double* a, const int* lda, int* ipiv, int* info);
void scipy_dgetrs_(const char* trans, const int* n, const int* nrhs, const double* a, const int* lda,
                   const int* ipiv, double* b, const int* ldb, int* info, std::size_t trans_len);

void scipy_cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc);
void scipy_cblas_dgemm(int order, int transa, int transb, int m, int n, int k, double alpha, const double* a,
                       int lda, const double* b, int ldb, double beta, double* c, int ldc);
void scipy_cblas_sgemv(int order, int trans, int m, int n, float alpha, const float* a, int lda, const float* x,
                       int incx, float beta, float* y, int incy);
void scipy_cblas_dgemv(int order, int trans, int m, int n, double alpha, const double* a, int lda,
                       const double* x, int incx, double beta, double* y, int incy);
void scipy_cblas_dsyrk(int order, int uplo, int trans, int n, int k, double alpha, const double* a, int lda,
                       double beta, double* c, int ldc);
void scipy_openblas_set_num_threads(int num_threads);
int scipy_openblas_get_num_threads(void);
}

namespace fastslow::blas {

constexpr int RowMajor = 101, NoTrans = 111, Trans = 112, Upper = 121;

inline void gemm(int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
  scipy_cblas_sgemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(int ta, int tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                 int ldb, double beta, double* c, int ldc) {
  scipy_cblas_dgemm(RowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemv(int t, int m, int n, float alpha, const float* a, int lda, const float* x, float beta, float* y) {
  scipy_cblas_sgemv(RowMajor, t, m, n, alpha, a, lda, x, 1, beta, y, 1);
}
inline void gemv(int t, int m, int n, double alpha, const double* a, int lda, const double* x, double beta,
                 double* y) {
  scipy_cblas_dgemv(RowMajor, t, m, n, alpha, a, lda, x, 1, beta, y, 1);
}

// fastslow's OpenBLAS (the scipy-openblas32 wheel's library, not NumPy's or SciPy's own copies)
// always runs single-threaded: fastslow's OpenMP threads parallelise around it, on blocks fixed by
// the sizes. OpenBLAS's thread count is process-global, so a scoped change (set, call, restore)
// would leak into calls running at the same time in other Python threads, making their BLAS
// calls multi-threaded (oversubscribed, and rounded differently). Set once, never raised.
inline void ensure_single_threaded() {
  if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

}  // namespace fastslow::blas
