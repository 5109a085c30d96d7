/* fastmlp's C kernels, the layers below the Cython driver (_kernels.pyx and
 * its .pxi files), for float64 and float32:
 *
 *   shapes.h    the target's vectors and the shapes of its blocks and tiles
 *   rule.h      the optimizer's rule and its factors for one step
 *   dropout.h   dropout's masks, from a counter
 *   typed.h     one float type's vectors; includes, in order:
 *   element.h     one element: exp, the step of one weight and of a vector
 *   blocks.h      register blocks of examples and of weight rows, for
 *                 networks that go in blocks of examples (sweeps.h)
 *   tiles.h       the register tile and its packed operands, for wide
 *                 networks that go a layer at a time
 *   products.h    the cache blocks of those: weights in panels, and the
 *                 forward, backward and gradient products of a layer
 *   units.h       a layer's activations and deltas, a vector of units at a
 *                 time (unit_vectors.h)
 *
 * typed.h is included once per float type, with FASTMLP_T (the float type),
 * FASTMLP_V (a vector of it), FASTMLP_VI (its integer twin), FASTMLP_LANES,
 * FASTMLP_NV (vectors per block), FASTMLP_U, FASTMLP_UI and FASTMLP_ULANES
 * (the unit vector), FASTMLP_ROWS (weight rows per gradient block),
 * FASTMLP_F64 and FASTMLP_NAME (the functions' suffix) defined, which it
 * undefines at its end.
 */
#ifndef FASTMLP_KERNELS_H
#define FASTMLP_KERNELS_H

#include "shapes.h"
#include "rule.h"
#include "dropout.h"

#define FASTMLP_T double
#define FASTMLP_V fastmlp_vf64
#define FASTMLP_VI fastmlp_vi64
#define FASTMLP_U fastmlp_vf64
#define FASTMLP_UI fastmlp_vi64
#define FASTMLP_F64 1
#define FASTMLP_LANES (FASTMLP_VBYTES / 8)
#define FASTMLP_ULANES (FASTMLP_UBYTES_F64 / 8)
#define FASTMLP_ROWS FASTMLP_ROWS_F64
#define FASTMLP_NV FASTMLP_NV_F64
#define FASTMLP_NAME(f) f##_f64
#include "typed.h"

#define FASTMLP_T float
#define FASTMLP_V fastmlp_vf32
#define FASTMLP_VI fastmlp_vi32
#define FASTMLP_U fastmlp_uf32
#define FASTMLP_UI fastmlp_ui32
#define FASTMLP_F64 0
#define FASTMLP_LANES (FASTMLP_VBYTES / 4)
#define FASTMLP_ULANES (FASTMLP_UBYTES_F32 / 4)
#define FASTMLP_ROWS FASTMLP_ROWS_F32
#define FASTMLP_NV FASTMLP_NV_F32
#define FASTMLP_NAME(f) f##_f32
#include "typed.h"

#endif
