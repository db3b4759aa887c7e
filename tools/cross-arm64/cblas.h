/* Cross-arm64 check only (tools/cross-arm64.sh): the one CBLAS call the
 * gallery makes, so core/gallery/gallery.c compiles for aarch64 without an
 * arm64 OpenBLAS. Implemented naively in shim.c. */
#ifndef HK_XSHIM_CBLAS_H
#define HK_XSHIM_CBLAS_H
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                 int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
#endif
