/* The shapes of fastmlp's kernels for the target they are compiled for:
 * the width of their vectors and how many examples, weight rows and outputs
 * each register block and tile holds, and the vector types. Everything else
 * is written once, in terms of these; they are what one target's build
 * differs from another's in.
 *
 * The register blocks keep FASTMLP_OUTPUTS_* partial sums (one or two
 * vectors) for each of FASTMLP_SAMPLES examples (forward pass) or
 * FASTMLP_ROWS_* weight rows (gradient) in registers for the whole of a sum.
 * GCC's auto-vectoriser does not reliably do that with plain loops, so the
 * vectors are written with GCC/Clang vector types: 64 bytes wide where the
 * target has AVX-512, 32 bytes otherwise. Vector + and * are the IEEE
 * operations lane by lane, and -ffp-contract=off keeps them unfused, so each
 * sum is exactly the scalar left-to-right sum of the arithmetic contract,
 * whatever the width. Other compilers get plain scalar loops that compute
 * the same sums in the same order.
 */
#ifndef FASTMLP_SHAPES_H
#define FASTMLP_SHAPES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The arithmetic contract the kernels are compiled for: 0 rounds each
 * multiply-add twice, as NumPy does; 1 (fastmlp's fma=True) fuses the
 * multiply-adds of the sums and of the step, each rounded once (element.h). */
#ifndef FASTMLP_FUSED
#define FASTMLP_FUSED 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FASTMLP_VECTORS 1
#define FASTMLP_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FASTMLP_ALWAYS_INLINE
#endif

/* Vector bytes, vectors per block, and examples or rows per block: 2 of 8
 * float64 or 1 of 16 float32, for 8 examples or rows (16 rows of float32),
 * with AVX-512; 2 of 4 float64 or 2 of 8 float32, for 4, with AVX; 2 of 2
 * float64 or 2 of 4 float32, for 4, with only SSE2 (a portable x86-64
 * build). 8 vectors of sums (4 × 2) fill half of the 16 registers of AVX
 * and SSE2. AVX-512 has 32: 16 vectors of sums (8 × 2 of float64, 16 rows ×
 * 1 of float32) or 8 (8 examples × 1 of float32) keep its two pipes busy,
 * and each row of weights (forward) or of deltas (gradient) is loaded once
 * for 8 or 16 examples or rows, half the loads of 4 or 8. Vectors wider than the
 * target's registers would be split by the compiler, badly (a portable
 * build was 17 times slower so). */
#if defined(FASTMLP_VECTOR_BYTES)
/* A build that takes another target's vectors and shapes (setup.py's
 * FASTMLP_VECTOR_BYTES): on a CPU without them the compiler splits each
 * vector, slowly, but the sums are the same, so the tests can check every
 * target's shapes on any x86-64 machine. */
#define FASTMLP_VBYTES FASTMLP_VECTOR_BYTES
#else
#if defined(__AVX512F__)
#define FASTMLP_VBYTES 64
#elif defined(__AVX__)
#define FASTMLP_VBYTES 32
#else
#define FASTMLP_VBYTES 16
#endif
#endif

#if FASTMLP_VBYTES == 64
#define FASTMLP_NV_F64 2
#define FASTMLP_NV_F32 1
#define FASTMLP_SAMPLES 8
#define FASTMLP_ROWS_F64 8
#define FASTMLP_ROWS_F32 16
#elif FASTMLP_VBYTES == 32
#define FASTMLP_NV_F64 2
#define FASTMLP_NV_F32 2
#define FASTMLP_SAMPLES 4
#define FASTMLP_ROWS_F64 4
#define FASTMLP_ROWS_F32 4
#else
#define FASTMLP_NV_F64 2
#define FASTMLP_NV_F32 2
#define FASTMLP_SAMPLES 4
#define FASTMLP_ROWS_F64 4
#define FASTMLP_ROWS_F32 4
#endif
/* The wide layers' register tiles (tiles.h): FASTMLP_TILE_ROWS rows
 * (examples, or weight rows) × FASTMLP_TILE_NV vectors of sums. Without
 * fused multiply-add each term needs a register for its product besides
 * the sum's: the 16 registers of AVX and SSE2 hold 6 × 2 sums, the two
 * vectors of the packed operand, the broadcast and the product. 12 chains
 * of sums cover the latency of the additions where 8 do not (AMD Zen 3:
 * 23.3 against 16.0 G multiply-adds/s in float64). AVX-512's 32 registers
 * hold 8 × 2, which reach Zen 4's limit. */
#if FASTMLP_VBYTES == 64
#define FASTMLP_TILE_ROWS 8
#else
#define FASTMLP_TILE_ROWS 6
#endif
#define FASTMLP_TILE_NV 2
#define FASTMLP_TILE_F64 (FASTMLP_TILE_NV * FASTMLP_VBYTES / 8)
#define FASTMLP_TILE_F32 (FASTMLP_TILE_NV * FASTMLP_VBYTES / 4)
typedef char fastmlp_check_tile_rows[FASTMLP_TILE_ROWS <= 8 ? 1 : -1];
/* Larger mini-batches go through the wide layers' forward and backward
 * products in chunks of this many examples (a multiple of every tile's
 * columns), which bounds what they pack: the backward's block of deltas
 * stays in L2 with blocks of useful length (whole mini-batches of 1000
 * float64 examples lost a third of their speed without chunks). */
#define FASTMLP_CHUNK_EXAMPLES 256

/* 1/n! for exp's Taylor polynomial, n = 0 … 13: fastmlp.reference's literals. */
static const double fastmlp_inv_factorial[14] = {
    1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333,
    0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05, 2.7557319223985893e-06,
    2.755731922398589e-07, 2.505210838544172e-08, 2.08767569878681e-09, 1.6059043836821613e-10,
};

/* The activations, in the kernels' codes (SIGMOID, RELU and TANH there).
 * FASTMLP_SLOPES, for the deltas, says that each unit's σ' (times its
 * dropout mask) is already in the delta's place, put there by the forward
 * pass, rather than to be computed from the activation. */
enum { FASTMLP_SIGMOID = 0, FASTMLP_RELU = 1, FASTMLP_TANH = 2, FASTMLP_SLOPES = -1 };

#define FASTMLP_OUTPUTS_F64 (FASTMLP_NV_F64 * FASTMLP_VBYTES / 8)
#define FASTMLP_OUTPUTS_F32 (FASTMLP_NV_F32 * FASTMLP_VBYTES / 4)

/* What the kernels assume of the sizes above (a negative array size fails
 * the build): blocks of 4 or 8 examples (the kernels are written for those
 * counts), and at most 16 rows and 16 outputs (nudge_rows's buffer). */
typedef char fastmlp_check_samples[FASTMLP_SAMPLES == 4 || FASTMLP_SAMPLES == 8 ? 1 : -1];
typedef char fastmlp_check_rows[FASTMLP_ROWS_F64 <= 16 && FASTMLP_ROWS_F32 <= 16 ? 1 : -1];
typedef char fastmlp_check_outputs[FASTMLP_OUTPUTS_F64 <= 16 && FASTMLP_OUTPUTS_F32 <= 16 ? 1 : -1];

/* A layer's units (activations, deltas, and the sums of layers narrower than
 * a block) go in unit vectors: one of the block's vectors, or half of one
 * for float32 with AVX-512, so at most 8 lanes. With AVX-512 the 10 outputs
 * of a digit classifier fill two overlapping ones. */
#define FASTMLP_UBYTES_F64 FASTMLP_VBYTES
#if FASTMLP_VBYTES == 64
#define FASTMLP_UBYTES_F32 32
#else
#define FASTMLP_UBYTES_F32 FASTMLP_VBYTES
#endif

/* Lanes of a unit vector: activate_units_*, deltas_back_* and the *_narrow
 * functions take layers of at least this many units (0: never, without vectors). */
#ifdef FASTMLP_VECTORS
#define FASTMLP_UNIT_LANES_F64 (FASTMLP_UBYTES_F64 / 8)
#define FASTMLP_UNIT_LANES_F32 (FASTMLP_UBYTES_F32 / 4)
#else
#define FASTMLP_UNIT_LANES_F64 0
#define FASTMLP_UNIT_LANES_F32 0
#endif

#ifdef FASTMLP_VECTORS
typedef double fastmlp_vf64 __attribute__((vector_size(FASTMLP_VBYTES)));
typedef float fastmlp_vf32 __attribute__((vector_size(FASTMLP_VBYTES)));
/* Integer vectors of the same lanes, for exp's bit operations and for
 * comparisons, whose results are lanes of all ones or all zeros. */
typedef long long fastmlp_vi64 __attribute__((vector_size(FASTMLP_VBYTES)));
typedef int fastmlp_vi32 __attribute__((vector_size(FASTMLP_VBYTES)));
typedef float fastmlp_uf32 __attribute__((vector_size(FASTMLP_UBYTES_F32)));
typedef int fastmlp_ui32 __attribute__((vector_size(FASTMLP_UBYTES_F32)));

/* IEEE's square root on vectors, correctly rounded lane by lane (Adam's
 * step): FASTMLP_SQRT_<type>_<bytes>(x). The target's instruction where it
 * has one for the vectors' width; elsewhere each lane calls the C library's
 * sqrt, correctly rounded too, so every target gives the same bits. */
#if defined(__x86_64__)
#include <immintrin.h>
#define FASTMLP_SQRT_f64_16(x) ((__typeof__(x))_mm_sqrt_pd((__m128d)(x)))
#define FASTMLP_SQRT_f32_16(x) ((__typeof__(x))_mm_sqrt_ps((__m128)(x)))
#ifdef __AVX__
#define FASTMLP_SQRT_f64_32(x) ((__typeof__(x))_mm256_sqrt_pd((__m256d)(x)))
#define FASTMLP_SQRT_f32_32(x) ((__typeof__(x))_mm256_sqrt_ps((__m256)(x)))
#endif
#ifdef __AVX512F__
#define FASTMLP_SQRT_f64_64(x) ((__typeof__(x))_mm512_sqrt_pd((__m512d)(x)))
#define FASTMLP_SQRT_f32_64(x) ((__typeof__(x))_mm512_sqrt_ps((__m512)(x)))
#endif
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define FASTMLP_SQRT_f64_16(x) ((__typeof__(x))vsqrtq_f64((float64x2_t)(x)))
#define FASTMLP_SQRT_f32_16(x) ((__typeof__(x))vsqrtq_f32((float32x4_t)(x)))
#endif
#define FASTMLP_SQRT_LANES(x, root)                                             \
    ({                                                                        \
        __typeof__(x) x_ = (x);                                               \
        for (int i_ = 0; i_ < (int)(sizeof x_ / sizeof x_[0]); i_++)          \
            x_[i_] = root(x_[i_]);                                            \
        x_;                                                                   \
    })
#ifndef FASTMLP_SQRT_f64_16
#define FASTMLP_SQRT_f64_16(x) FASTMLP_SQRT_LANES(x, sqrt)
#define FASTMLP_SQRT_f32_16(x) FASTMLP_SQRT_LANES(x, sqrtf)
#endif
#ifndef FASTMLP_SQRT_f64_32
#define FASTMLP_SQRT_f64_32(x) FASTMLP_SQRT_LANES(x, sqrt)
#define FASTMLP_SQRT_f32_32(x) FASTMLP_SQRT_LANES(x, sqrtf)
#endif
#ifndef FASTMLP_SQRT_f64_64
#define FASTMLP_SQRT_f64_64(x) FASTMLP_SQRT_LANES(x, sqrt)
#define FASTMLP_SQRT_f32_64(x) FASTMLP_SQRT_LANES(x, sqrtf)
#endif
#define FASTMLP_SQRT_NAME(type, bytes) FASTMLP_SQRT_##type##_##bytes
#define FASTMLP_SQRT_OF(type, bytes) FASTMLP_SQRT_NAME(type, bytes)

/* The fused contract's multiply-add on vectors, acc + x·y with a scalar x,
 * rounded once lane by lane: FASTMLP_FMA_<type>_<bytes>(acc, x, y), by the
 * float type and the vectors' bytes. Where the target has the instruction,
 * it is named (x86-64 with FMA, AArch64); elsewhere each lane calls the C
 * library's fma, correctly rounded, so every target gives the same bits.
 * (GCC's vectoriser does not reliably make the instruction of such a loop
 * of lanes: it left a third of the speed in the register tile.) */
#if FASTMLP_FUSED
#if defined(__FMA__) && defined(__x86_64__)
#define FASTMLP_FMA_INSTRUCTION 1
#include <immintrin.h>
#define FASTMLP_FMA_f64_16(a, x, y) ((__typeof__(a))_mm_fmadd_pd((__m128d)(y), _mm_set1_pd(x), (__m128d)(a)))
#define FASTMLP_FMA_f32_16(a, x, y) ((__typeof__(a))_mm_fmadd_ps((__m128)(y), _mm_set1_ps(x), (__m128)(a)))
#define FASTMLP_FMA_f64_32(a, x, y) ((__typeof__(a))_mm256_fmadd_pd((__m256d)(y), _mm256_set1_pd(x), (__m256d)(a)))
#define FASTMLP_FMA_f32_32(a, x, y) ((__typeof__(a))_mm256_fmadd_ps((__m256)(y), _mm256_set1_ps(x), (__m256)(a)))
#ifdef __AVX512F__
#define FASTMLP_FMA_f64_64(a, x, y) ((__typeof__(a))_mm512_fmadd_pd((__m512d)(y), _mm512_set1_pd(x), (__m512d)(a)))
#define FASTMLP_FMA_f32_64(a, x, y) ((__typeof__(a))_mm512_fmadd_ps((__m512)(y), _mm512_set1_ps(x), (__m512)(a)))
#endif
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define FASTMLP_FMA_INSTRUCTION 1
#include <arm_neon.h>
#define FASTMLP_FMA_f64_16(a, x, y) ((__typeof__(a))vfmaq_n_f64((float64x2_t)(a), (float64x2_t)(y), x))
#define FASTMLP_FMA_f32_16(a, x, y) ((__typeof__(a))vfmaq_n_f32((float32x4_t)(a), (float32x4_t)(y), x))
#endif
#define FASTMLP_FMA_LANES(a, x, y, fused)                                       \
    ({                                                                        \
        __typeof__(a) a_ = (a), y_ = (y);                                     \
        __typeof__(a_[0]) x_ = (x);                                           \
        for (int i_ = 0; i_ < (int)(sizeof a_ / sizeof a_[0]); i_++)          \
            a_[i_] = fused(x_, y_[i_], a_[i_]);                               \
        a_;                                                                   \
    })
#ifndef FASTMLP_FMA_f64_16
#define FASTMLP_FMA_f64_16(a, x, y) FASTMLP_FMA_LANES(a, x, y, fma)
#define FASTMLP_FMA_f32_16(a, x, y) FASTMLP_FMA_LANES(a, x, y, fmaf)
#endif
#ifndef FASTMLP_FMA_f64_32
#define FASTMLP_FMA_f64_32(a, x, y) FASTMLP_FMA_LANES(a, x, y, fma)
#define FASTMLP_FMA_f32_32(a, x, y) FASTMLP_FMA_LANES(a, x, y, fmaf)
#endif
#ifndef FASTMLP_FMA_f64_64
#define FASTMLP_FMA_f64_64(a, x, y) FASTMLP_FMA_LANES(a, x, y, fma)
#define FASTMLP_FMA_f32_64(a, x, y) FASTMLP_FMA_LANES(a, x, y, fmaf)
#endif
/* FASTMLP_FMA_OF(f64, FASTMLP_VBYTES): the name, once the bytes' macro is expanded. */
#define FASTMLP_FMA_NAME(type, bytes) FASTMLP_FMA_##type##_##bytes
#define FASTMLP_FMA_OF(type, bytes) FASTMLP_FMA_NAME(type, bytes)
#endif
#endif
/* Whether the fused contract's multiply-adds are instructions inline (above, and the
 * compiler's own for the scalar fma of such a target), not calls of the C library's fma. */
#ifndef FASTMLP_FMA_INSTRUCTION
#define FASTMLP_FMA_INSTRUCTION 0
#endif

#endif
