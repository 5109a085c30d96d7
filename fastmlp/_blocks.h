/* The innermost loops of fastmlp's kernels, register-blocked, for float64
 * and float32 (this file is included once for each, see _blocks_impl.h).
 *
 * A block keeps 2 vectors of partial sums for each of 4 examples (forward
 * pass) or 4 weight rows (gradient) in registers for the whole of a sum.
 * GCC's auto-vectoriser does not reliably do that with plain loops, so the
 * vectors are written with GCC/Clang vector types, 32 bytes wide. Vector
 * + and * are the IEEE operations lane by lane, and -ffp-contract=off keeps
 * them unfused, so each sum is exactly the scalar left-to-right sum of the
 * arithmetic contract. Other compilers get plain scalar loops that compute
 * the same sums in the same order.
 */
#ifndef FASTMLP_BLOCKS_H
#define FASTMLP_BLOCKS_H


#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FASTMLP_VECTORS 1
typedef double fastmlp_f64x4 __attribute__((vector_size(32)));
typedef float fastmlp_f32x8 __attribute__((vector_size(32)));
#endif

#define FASTMLP_T double
#define FASTMLP_V fastmlp_f64x4
#define FASTMLP_LANES 4
#define FASTMLP_SPLAT(x) {x, x, x, x}
#define FASTMLP_NAME(f) f##_f64
#include "_blocks_impl.h"
#undef FASTMLP_T
#undef FASTMLP_V
#undef FASTMLP_LANES
#undef FASTMLP_SPLAT
#undef FASTMLP_NAME

#define FASTMLP_T float
#define FASTMLP_V fastmlp_f32x8
#define FASTMLP_LANES 8
#define FASTMLP_SPLAT(x) {x, x, x, x, x, x, x, x}
#define FASTMLP_NAME(f) f##_f32
#include "_blocks_impl.h"
#undef FASTMLP_T
#undef FASTMLP_V
#undef FASTMLP_LANES
#undef FASTMLP_SPLAT
#undef FASTMLP_NAME

#endif
