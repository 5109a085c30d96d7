/* A layer's activations and deltas a vector of units at a time, for one
 * float type (included by typed.h, after element.h's exp constants). */

#ifdef FASTMLP_VECTORS
/* Activations and deltas (unit_vectors.h) a unit vector at a time; for float32
 * with AVX-512, layers of 16 units or more a whole vector at a time. */
#define AV U
#define AVI FASTMLP_UI
#define AL UL
#define ALOAD ULOAD
#define ASTORE USTORE
#define AMADD UMADD
#define UNAME(f) FASTMLP_NAME(f##_unit)
#include "unit_vectors.h"
#if FASTMLP_LANES > FASTMLP_ULANES
#define FASTMLP_WIDE_UNITS 1
#define AV V
#define AVI FASTMLP_VI
#define AL L
#define ALOAD LOAD
#define ASTORE STORE
#define AMADD VMADD
#define UNAME(f) FASTMLP_NAME(f##_wide)
#include "unit_vectors.h"
#endif

/* One example's deltas of a layer of n ≥ UL units (see unit_vectors.h). */
static void FASTMLP_NAME(deltas_back)(const T* w, Py_ssize_t n, const T* d_next, Py_ssize_t n_next,
                                      const T* a, int kind, T* d)
{
#ifdef FASTMLP_WIDE_UNITS
    if (n >= L) {
        FASTMLP_NAME(deltas_wide)(w, n, d_next, n_next, a, kind, d);
        return;
    }
#endif
    FASTMLP_NAME(deltas_unit)(w, n, d_next, n_next, a, kind, d);
}

/* z_i ← activation(z_i + bias) for the rows z_0 … z_{rows−1} of n ≥ UL units each. */
static void FASTMLP_NAME(activate_units)(int rows, T* const* z, const T* bias, Py_ssize_t n, int kind)
{
#ifdef FASTMLP_WIDE_UNITS
    if (n >= L) {
        FASTMLP_NAME(activate_wide)(rows, z, bias, n, kind);
        return;
    }
#endif
    FASTMLP_NAME(activate_unit)(rows, z, bias, n, kind);
}
#undef FASTMLP_WIDE_UNITS
#else
/* Never called without vectors (FASTMLP_UNIT_LANES_* is 0): the kernels refer to them. */
static void FASTMLP_NAME(activate_units)(int rows, T* const* z, const T* bias, Py_ssize_t n, int kind) {}
static void FASTMLP_NAME(deltas_back)(const T* w, Py_ssize_t n, const T* d_next, Py_ssize_t n_next,
                                      const T* a, int kind, T* d) {}
#endif
