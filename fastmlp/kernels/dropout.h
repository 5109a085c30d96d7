/* Dropout's masks (fastmlp.reference, rule 11): whether unit u of example
 * x is kept in an epoch is a function of the epoch's 64-bit key and of the
 * counter x·width + u alone, SplitMix64's output for that counter, so the
 * masks depend on no thread, order or block, and the reference computes the
 * same ones with NumPy's unsigned integers. */
#ifndef FASTMLP_DROPOUT_H
#define FASTMLP_DROPOUT_H

#include <stdint.h>

/* Whether the unit of `counter` is kept: the top 53 bits of SplitMix64's
 * output for state key + (counter + 1)·γ are at least `threshold` (p·2^53,
 * rounded, for a dropout probability p). */
static inline int fastmlp_kept(uint64_t key, uint64_t counter, uint64_t threshold)
{
    uint64_t z = key + (counter + 1) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (z >> 11) >= threshold;
}

#endif
