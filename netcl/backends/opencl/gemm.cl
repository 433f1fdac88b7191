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

// The same product with 4 x 16 blocks, for small products (a training
// step's layers). Eight 16-wide sums and their operands overflow the sixteen
// AVX2 registers PoCL compiles for, and on those shapes the spills cost
// 1.3-1.5x; on large ones gemm_f32's greater reuse wins. A block cut by the
// bottom edge of C still runs the vector loop: its missing rows re-read the
// last real row and are not stored.

#define R4_MR 4

__kernel void gemm_f32_r4(__global float *C, int coff, int bsc,
                          __global const float *A, int aoff, int sam, int sak,
                          int bsa, __global const float *B, int boff, int ldb,
                          int bsb, int M, int N, int K) {
    int j0 = get_global_id(0) * NR;
    int i0 = get_global_id(1) * R4_MR;
    int bt = get_global_id(2);
    A += aoff + bt * bsa + i0 * sam;
    B += boff + bt * bsb + j0;
    C += coff + bt * bsc + i0 * N + j0;
    int rows = min(R4_MR, M - i0);
    int cols = min(NR, N - j0);
    if (rows <= 0 || cols <= 0) return;

    if (cols == NR) {
        int s1 = min(1, rows - 1) * sam;
        int s2 = min(2, rows - 1) * sam;
        int s3 = min(3, rows - 1) * sam;
        floatu16 c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        // Unrolling by two lets PoCL overlap the loads of one k step with
        // the multiply-adds of the other; four spills again.
#pragma unroll 2
        for (int k = 0; k < K; ++k) {
            floatu16 bv = *(__global const floatu16 *)(B + k * ldb);
            __global const float *a = A + k * sak;
            c0 += a[0] * bv;
            c1 += a[s1] * bv;
            c2 += a[s2] * bv;
            c3 += a[s3] * bv;
        }
        *(__global floatu16 *)(C) = c0;
        if (rows > 1) *(__global floatu16 *)(C + N) = c1;
        if (rows > 2) *(__global floatu16 *)(C + 2 * N) = c2;
        if (rows > 3) *(__global floatu16 *)(C + 3 * N) = c3;
        return;
    }

    // A partial block at the right edge: one element at a time.
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
// 4 x 2 block of C as eight 8-wide partial sums along k and adds each
// vector's lanes together at the end. A 4 x 4 block spills (twenty-one live
// vectors for sixteen registers) and ran 1.3-1.7x slower.

typedef float floatu8 __attribute__((ext_vector_type(8), aligned(4)));

inline float netcl_hsum8(floatu8 v) {
    float4 h = v.s0123 + v.s4567;
    return (h.s0 + h.s1) + (h.s2 + h.s3);
}

#define LOAD8(p) (*(__global const floatu8 *)(p))
#define NT_MR 4
#define NT_NR 2

__kernel void gemm_nt_f32(__global float *C, int coff, int bsc,
                          __global const float *A, int aoff, int lda, int bsa,
                          __global const float *B, int boff, int ldb, int bsb,
                          int M, int N, int K) {
    int j0 = get_global_id(0) * NT_NR;
    int i0 = get_global_id(1) * NT_MR;
    int bt = get_global_id(2);
    A += aoff + bt * bsa + i0 * lda;
    B += boff + bt * bsb + j0 * ldb;
    C += coff + bt * bsc + i0 * N + j0;
    int rows = min(NT_MR, M - i0);
    int cols = min(NT_NR, N - j0);
    if (rows <= 0 || cols <= 0) return;

    float s[NT_MR][NT_NR] = {{0}};
    int k = 0;
    if (rows == NT_MR && cols == NT_NR) {
        floatu8 c00 = 0, c01 = 0, c10 = 0, c11 = 0;
        floatu8 c20 = 0, c21 = 0, c30 = 0, c31 = 0;
        for (; k + 8 <= K; k += 8) {
            floatu8 b0 = LOAD8(B + k), b1 = LOAD8(B + ldb + k);
            floatu8 a = LOAD8(A + k);
            c00 += a * b0; c01 += a * b1;
            a = LOAD8(A + lda + k);
            c10 += a * b0; c11 += a * b1;
            a = LOAD8(A + 2 * lda + k);
            c20 += a * b0; c21 += a * b1;
            a = LOAD8(A + 3 * lda + k);
            c30 += a * b0; c31 += a * b1;
        }
        s[0][0] = netcl_hsum8(c00); s[0][1] = netcl_hsum8(c01);
        s[1][0] = netcl_hsum8(c10); s[1][1] = netcl_hsum8(c11);
        s[2][0] = netcl_hsum8(c20); s[2][1] = netcl_hsum8(c21);
        s[3][0] = netcl_hsum8(c30); s[3][1] = netcl_hsum8(c31);
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
