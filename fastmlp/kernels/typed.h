/* One float type's kernels: its vectors, loads and stores, then every layer
 * of the kernels in order (see kernels.h, which includes this once per type).
 * The loops over a block's examples or rows and its vectors have constant
 * bounds: the compiler unrolls them and keeps the arrays of sums in
 * registers. */

#define T FASTMLP_T
#define NV FASTMLP_NV
#define L FASTMLP_LANES
#define N (NV * L)
#define UL FASTMLP_ULANES
#define TR FASTMLP_TILE_ROWS
#define TNV FASTMLP_TILE_NV
#define TN (TNV * L)

#ifdef FASTMLP_VECTORS
#define V FASTMLP_V
static inline V FASTMLP_NAME(vload)(const T* p) { V v; memcpy(&v, p, sizeof v); return v; }
static inline void FASTMLP_NAME(vstore)(T* p, V v) { memcpy(p, &v, sizeof v); }
#define LOAD FASTMLP_NAME(vload)
#define STORE FASTMLP_NAME(vstore)
#define U FASTMLP_U
static inline U FASTMLP_NAME(uload)(const T* p) { U u; memcpy(&u, p, sizeof u); return u; }
static inline void FASTMLP_NAME(ustore)(T* p, U u) { memcpy(p, &u, sizeof u); }
#define ULOAD FASTMLP_NAME(uload)
#define USTORE FASTMLP_NAME(ustore)
#endif

#include "element.h"
#include "blocks.h"
#include "tiles.h"
#include "products.h"
#include "units.h"

#undef EXP_LO
#undef EXP_HI
#undef EXP_SHIFTER
#undef EXP_LN2_HI
#undef EXP_LN2_LO
#undef EXP_DEGREE
#undef EXP_BIAS
#undef EXP_MANTISSA_BITS
#undef EXP_LOG2_E
#undef EXP_INT
#undef EXP_UINT

#undef MADD
#undef VMADD
#undef UMADD
#undef SQRT
#ifdef FASTMLP_VECTORS
#undef VSQRT
#undef USQRT
#endif
#ifdef FUSE
#undef FUSE
#endif
#ifdef FASTMLP_VECTORS
#undef STEP_VECTOR
#undef V
#undef LOAD
#undef STORE
#undef U
#undef ULOAD
#undef USTORE
#endif
#undef T
#undef NV
#undef L
#undef N
#undef UL
#undef TR
#undef TNV
#undef TN

#undef FASTMLP_T
#undef FASTMLP_V
#undef FASTMLP_VI
#undef FASTMLP_U
#undef FASTMLP_UI
#undef FASTMLP_F64
#undef FASTMLP_LANES
#undef FASTMLP_ULANES
#undef FASTMLP_ROWS
#undef FASTMLP_NV
#undef FASTMLP_NAME
