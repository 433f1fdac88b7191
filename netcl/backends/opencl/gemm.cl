// Single-precision GEMM for CPU-like OpenCL devices (PoCL).
//
// C[b, i, j] = sum_k A[b, i, k] * B[b, k, j], with C contiguous. Each
// work-item owns an 8 x 16 block of C and keeps it in sixteen-wide vector
// registers for the whole K loop: per k it loads one 16-float row segment of
// B and broadcasts eight elements of A. No local memory: on a CPU the caches
// already do that job, and barriers only cost time.
//
// A is read through two strides (sam between rows, sak between columns), so
// a transposed view of a row-major matrix needs no copy. B must have unit
// stride along j (ldb between rows); the host copies it otherwise.
//
// The vector type below is aligned like a float, so a 16-float row segment
// can start anywhere; plain pointer casts compile to plain vector loads,
// which vload16() would not on PoCL.
//
// Work-items past the edge of C (the host rounds the grid up to whole
// work-groups) find no rows or columns to compute and return.

typedef float floatu16 __attribute__((ext_vector_type(16), aligned(4)));

#define MR 8
#define NR 16

__kernel void gemm_f32(__global float *C, int coff, int bsc,
                       __global const float *A, int aoff, int sam, int sak,
                       int bsa, __global const float *B, int boff, int ldb,
                       int bsb, int M, int N, int K) {
    int j0 = get_global_id(0) * NR;
    int i0 = get_global_id(1) * MR;
    int bt = get_global_id(2);
    A += aoff + bt * bsa + i0 * sam;
    B += boff + bt * bsb + j0;
    C += coff + bt * bsc + i0 * N + j0;

    if (i0 + MR <= M && j0 + NR <= N) {
        floatu16 c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        floatu16 c4 = 0, c5 = 0, c6 = 0, c7 = 0;
        // Unrolling by four lets PoCL interleave the loads of four k steps
        // with their multiply-adds (about 1.4x on a Zen 4 core).
#pragma unroll 4
        for (int k = 0; k < K; ++k) {
            floatu16 bv = *(__global const floatu16 *)(B + k * ldb);
            __global const float *a = A + k * sak;
            c0 += a[0] * bv;
            c1 += a[sam] * bv;
            c2 += a[2 * sam] * bv;
            c3 += a[3 * sam] * bv;
            c4 += a[4 * sam] * bv;
            c5 += a[5 * sam] * bv;
            c6 += a[6 * sam] * bv;
            c7 += a[7 * sam] * bv;
        }
        *(__global floatu16 *)(C) = c0;
        *(__global floatu16 *)(C + N) = c1;
        *(__global floatu16 *)(C + 2 * N) = c2;
        *(__global floatu16 *)(C + 3 * N) = c3;
        *(__global floatu16 *)(C + 4 * N) = c4;
        *(__global floatu16 *)(C + 5 * N) = c5;
        *(__global floatu16 *)(C + 6 * N) = c6;
        *(__global floatu16 *)(C + 7 * N) = c7;
        return;
    }

    // A partial block at the right or bottom edge: one element at a time.
    int rows = min(MR, M - i0);
    int cols = min(NR, N - j0);
    for (int r = 0; r < rows; ++r) {
        for (int q = 0; q < cols; ++q) {
            float acc = 0.0f;
            for (int k = 0; k < K; ++k) {
                acc += A[r * sam + k * sak] * B[k * ldb + q];
            }
            C[r * N + q] = acc;
        }
    }
}

// The same product when B is the transpose of a row-major matrix (B[k, j]
// at j * ldb + k) and A is row-major: C = A @ W.T, a linear layer's forward
// pass. Both operands are then contiguous along k, so each work-item keeps a
// 4 x 4 block of C as sixteen 8-wide partial sums along k and adds each
// vector's lanes together at the end.

typedef float floatu8 __attribute__((ext_vector_type(8), aligned(4)));

inline float netcl_hsum8(floatu8 v) {
    float4 h = v.s0123 + v.s4567;
    return (h.s0 + h.s1) + (h.s2 + h.s3);
}

#define LOAD8(p) (*(__global const floatu8 *)(p))

__kernel void gemm_nt_f32(__global float *C, int coff, int bsc,
                          __global const float *A, int aoff, int lda, int bsa,
                          __global const float *B, int boff, int ldb, int bsb,
                          int M, int N, int K) {
    int j0 = get_global_id(0) * 4;
    int i0 = get_global_id(1) * 4;
    int bt = get_global_id(2);
    A += aoff + bt * bsa + i0 * lda;
    B += boff + bt * bsb + j0 * ldb;
    C += coff + bt * bsc + i0 * N + j0;
    int rows = min(4, M - i0);
    int cols = min(4, N - j0);
    if (rows <= 0 || cols <= 0) return;

    float s[4][4] = {{0}};
    int k = 0;
    if (rows == 4 && cols == 4) {
        floatu8 c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        floatu8 c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        floatu8 c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        floatu8 c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (; k + 8 <= K; k += 8) {
            floatu8 b0 = LOAD8(B + k), b1 = LOAD8(B + ldb + k);
            floatu8 b2 = LOAD8(B + 2 * ldb + k), b3 = LOAD8(B + 3 * ldb + k);
            floatu8 a = LOAD8(A + k);
            c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
            a = LOAD8(A + lda + k);
            c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
            a = LOAD8(A + 2 * lda + k);
            c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
            a = LOAD8(A + 3 * lda + k);
            c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
        }
        s[0][0] = netcl_hsum8(c00); s[0][1] = netcl_hsum8(c01);
        s[0][2] = netcl_hsum8(c02); s[0][3] = netcl_hsum8(c03);
        s[1][0] = netcl_hsum8(c10); s[1][1] = netcl_hsum8(c11);
        s[1][2] = netcl_hsum8(c12); s[1][3] = netcl_hsum8(c13);
        s[2][0] = netcl_hsum8(c20); s[2][1] = netcl_hsum8(c21);
        s[2][2] = netcl_hsum8(c22); s[2][3] = netcl_hsum8(c23);
        s[3][0] = netcl_hsum8(c30); s[3][1] = netcl_hsum8(c31);
        s[3][2] = netcl_hsum8(c32); s[3][3] = netcl_hsum8(c33);
    }
    // The last K % 8 steps, or the whole of a partial edge block.
    for (int r = 0; r < rows; ++r) {
        for (int q = 0; q < cols; ++q) {
            float acc = s[r][q];
            for (int kk = k; kk < K; ++kk) {
                acc += A[r * lda + kk] * B[q * ldb + kk];
            }
            C[r * N + q] = acc;
        }
    }
}
