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
void scipy_cblas_ssyrk(int order, int uplo, int trans, int n, int k, float alpha, const float* a, int lda,
                       float beta, float* c, int ldc);
void scipy_cblas_strsm(int order, int side, int uplo, int transa, int diag, int m, int n, float alpha,
                       const float* a, int lda, float* b, int ldb);
void scipy_cblas_dtrsm(int order, int side, int uplo, int transa, int diag, int m, int n, double alpha,
                       const double* a, int lda, double* b, int ldb);
void scipy_cblas_strmm(int order, int side, int uplo, int transa, int diag, int m, int n, float alpha,
                       const float* a, int lda, float* b, int ldb);
void scipy_cblas_dtrmm(int order, int side, int uplo, int transa, int diag, int m, int n, double alpha,
                       const double* a, int lda, double* b, int ldb);

// LAPACK (column-major, Fortran calling convention: every argument by pointer; a trailing size_t per
// character argument is its hidden string length).
// Cholesky factorisation of a symmetric positive definite matrix.
void scipy_dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, std::size_t uplo_len);
// Cholesky factorisation with complete pivoting of a positive semi-definite matrix (rank-revealing).
void scipy_dpstrf_(const char* uplo, const int* n, double* a, const int* lda, int* piv, int* rank,
                   const double* tol, double* work, int* info, std::size_t uplo_len);
// Householder QR (the reflectors in the lower part, R in the upper) and the explicit Q from it.
void scipy_sgeqrf_(const int* m, const int* n, float* a, const int* lda, float* tau, float* work, const int* lwork,
                   int* info);
void scipy_dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work,
                   const int* lwork, int* info);
void scipy_sorgqr_(const int* m, const int* n, const int* k, float* a, const int* lda, const float* tau,
                   float* work, const int* lwork, int* info);
void scipy_dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau,
                   double* work, const int* lwork, int* info);
void scipy_openblas_set_num_threads(int num_threads);
int scipy_openblas_get_num_threads(void);
}

namespace fastslow::blas {

constexpr int RowMajor = 101, NoTrans = 111, Trans = 112, Upper = 121, Lower = 122, NonUnit = 131, Left = 141,
              Right = 142;

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

inline void syrk(int uplo, int trans, int n, int k, float alpha, const float* a, int lda, float beta, float* c,
                 int ldc) {
  scipy_cblas_ssyrk(RowMajor, uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}
inline void syrk(int uplo, int trans, int n, int k, double alpha, const double* a, int lda, double beta, double* c,
                 int ldc) {
  scipy_cblas_dsyrk(RowMajor, uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}
inline void trsm(int side, int uplo, int ta, int m, int n, float alpha, const float* a, int lda, float* b, int ldb) {
  scipy_cblas_strsm(RowMajor, side, uplo, ta, NonUnit, m, n, alpha, a, lda, b, ldb);
}
inline void trsm(int side, int uplo, int ta, int m, int n, double alpha, const double* a, int lda, double* b,
                 int ldb) {
  scipy_cblas_dtrsm(RowMajor, side, uplo, ta, NonUnit, m, n, alpha, a, lda, b, ldb);
}
inline void trmm(int side, int uplo, int ta, int m, int n, float alpha, const float* a, int lda, float* b, int ldb) {
  scipy_cblas_strmm(RowMajor, side, uplo, ta, NonUnit, m, n, alpha, a, lda, b, ldb);
}
inline void trmm(int side, int uplo, int ta, int m, int n, double alpha, const double* a, int lda, double* b,
                 int ldb) {
  scipy_cblas_dtrmm(RowMajor, side, uplo, ta, NonUnit, m, n, alpha, a, lda, b, ldb);
}
// Householder QR of a column-major m x n matrix in place (geqrf) and its explicit first k columns of Q
// (orgqr), overloaded on the type; `lwork` = -1 asks for the optimal workspace in work[0].
inline void geqrf(int m, int n, float* a, int lda, float* tau, float* work, int lwork, int& info) {
  scipy_sgeqrf_(&m, &n, a, &lda, tau, work, &lwork, &info);
}
inline void geqrf(int m, int n, double* a, int lda, double* tau, double* work, int lwork, int& info) {
  scipy_dgeqrf_(&m, &n, a, &lda, tau, work, &lwork, &info);
}
inline void orgqr(int m, int n, int k, float* a, int lda, const float* tau, float* work, int lwork, int& info) {
  scipy_sorgqr_(&m, &n, &k, a, &lda, tau, work, &lwork, &info);
}
inline void orgqr(int m, int n, int k, double* a, int lda, const double* tau, double* work, int lwork, int& info) {
  scipy_dorgqr_(&m, &n, &k, a, &lda, tau, work, &lwork, &info);
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
