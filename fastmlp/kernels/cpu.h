/* What the running CPU can execute, read with CPUID and XGETBV, for the
 * choice of a kernel variant at import (fastmlp/_dispatch.py). This file is
 * compiled for the baseline instruction set only (fastmlp/_cpu.pyx), so it
 * runs on every CPU of its architecture.
 *
 * A variant may use every instruction of its x86-64 micro-architecture
 * level, not only the vector ones the kernels ask for: the compiler is free
 * to pick BMI2 or MOVBE for scalar code. So each level's features are all
 * read, and the vector registers count only where the operating system
 * saves them on a context switch (XCR0), as the CPU's manuals require.
 */
#ifndef FASTMLP_CPU_H
#define FASTMLP_CPU_H

#include <string.h>

enum {
    /* x86-64-v2 */
    FASTMLP_CPU_SSE3 = 1 << 0,
    FASTMLP_CPU_SSSE3 = 1 << 1,
    FASTMLP_CPU_SSE41 = 1 << 2,
    FASTMLP_CPU_SSE42 = 1 << 3,
    FASTMLP_CPU_POPCNT = 1 << 4,
    FASTMLP_CPU_CX16 = 1 << 5,
    FASTMLP_CPU_LAHF = 1 << 6,
    /* x86-64-v3 */
    FASTMLP_CPU_AVX = 1 << 7,
    FASTMLP_CPU_AVX2 = 1 << 8,
    FASTMLP_CPU_BMI1 = 1 << 9,
    FASTMLP_CPU_BMI2 = 1 << 10,
    FASTMLP_CPU_F16C = 1 << 11,
    FASTMLP_CPU_FMA = 1 << 12,
    FASTMLP_CPU_LZCNT = 1 << 13,
    FASTMLP_CPU_MOVBE = 1 << 14,
    FASTMLP_CPU_OS_YMM = 1 << 15, /* the OS saves the AVX registers */
    /* x86-64-v4 */
    FASTMLP_CPU_AVX512F = 1 << 16,
    FASTMLP_CPU_AVX512BW = 1 << 17,
    FASTMLP_CPU_AVX512CD = 1 << 18,
    FASTMLP_CPU_AVX512DQ = 1 << 19,
    FASTMLP_CPU_AVX512VL = 1 << 20,
    FASTMLP_CPU_OS_ZMM = 1 << 21 /* the OS saves the AVX-512 registers */
};

typedef struct {
    char vendor[13]; /* "GenuineIntel", "AuthenticAMD", ...; empty off x86 */
    int family;      /* the display family and model, as Linux's /proc/cpuinfo gives them */
    int model;
    long features;   /* FASTMLP_CPU_* bits */
} fastmlp_cpu;

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void fastmlp_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    int out[4];
    __cpuidex(out, (int)leaf, (int)sub);
    memcpy(r, out, sizeof out);
}
static unsigned long long fastmlp_xcr0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void fastmlp_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
/* XGETBV by its encoding, so that no AVX target flag is needed to compile it. */
static unsigned long long fastmlp_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static fastmlp_cpu fastmlp_read_cpu(void) {
    fastmlp_cpu cpu;
    unsigned r[4], max_leaf, max_ext, base_family;
    long f = 0;
    memset(&cpu, 0, sizeof cpu);
    fastmlp_cpuid(0, 0, r);
    max_leaf = r[0];
    memcpy(cpu.vendor, &r[1], 4); /* EBX, EDX, ECX spell the vendor */
    memcpy(cpu.vendor + 4, &r[3], 4);
    memcpy(cpu.vendor + 8, &r[2], 4);
    if (max_leaf < 1)
        return cpu;
    fastmlp_cpuid(1, 0, r);
    base_family = (r[0] >> 8) & 0xf;
    cpu.family = (int)base_family + (base_family == 0xf ? (int)((r[0] >> 20) & 0xff) : 0);
    cpu.model = (int)((r[0] >> 4) & 0xf);
    if (cpu.family >= 6) /* as Linux computes it */
        cpu.model += (int)((r[0] >> 16) & 0xf) << 4;
    if (r[2] & (1u << 0)) f |= FASTMLP_CPU_SSE3;
    if (r[2] & (1u << 9)) f |= FASTMLP_CPU_SSSE3;
    if (r[2] & (1u << 12)) f |= FASTMLP_CPU_FMA;
    if (r[2] & (1u << 13)) f |= FASTMLP_CPU_CX16;
    if (r[2] & (1u << 19)) f |= FASTMLP_CPU_SSE41;
    if (r[2] & (1u << 20)) f |= FASTMLP_CPU_SSE42;
    if (r[2] & (1u << 22)) f |= FASTMLP_CPU_MOVBE;
    if (r[2] & (1u << 23)) f |= FASTMLP_CPU_POPCNT;
    if (r[2] & (1u << 28)) f |= FASTMLP_CPU_AVX;
    if (r[2] & (1u << 29)) f |= FASTMLP_CPU_F16C;
    if (r[2] & (1u << 27)) { /* OSXSAVE: XGETBV may be executed */
        unsigned long long xcr0 = fastmlp_xcr0();
        if ((xcr0 & 0x6) == 0x6) f |= FASTMLP_CPU_OS_YMM;           /* XMM and YMM state */
        if ((xcr0 & 0xe6) == 0xe6) f |= FASTMLP_CPU_OS_ZMM;         /* and opmask, ZMM */
#ifdef __APPLE__
        /* macOS saves the AVX-512 state but turns it on in XCR0 only at a thread's first
         * AVX-512 instruction. */
        if ((xcr0 & 0x6) == 0x6) f |= FASTMLP_CPU_OS_ZMM;
#endif
    }
    if (max_leaf >= 7) {
        fastmlp_cpuid(7, 0, r);
        if (r[1] & (1u << 3)) f |= FASTMLP_CPU_BMI1;
        if (r[1] & (1u << 5)) f |= FASTMLP_CPU_AVX2;
        if (r[1] & (1u << 8)) f |= FASTMLP_CPU_BMI2;
        if (r[1] & (1u << 16)) f |= FASTMLP_CPU_AVX512F;
        if (r[1] & (1u << 17)) f |= FASTMLP_CPU_AVX512DQ;
        if (r[1] & (1u << 28)) f |= FASTMLP_CPU_AVX512CD;
        if (r[1] & (1u << 30)) f |= FASTMLP_CPU_AVX512BW;
        if (r[1] & (1u << 31)) f |= FASTMLP_CPU_AVX512VL;
    }
    fastmlp_cpuid(0x80000000u, 0, r);
    max_ext = r[0];
    if (max_ext >= 0x80000001u) {
        fastmlp_cpuid(0x80000001u, 0, r);
        if (r[2] & (1u << 0)) f |= FASTMLP_CPU_LAHF;
        if (r[2] & (1u << 5)) f |= FASTMLP_CPU_LZCNT;
    }
    cpu.features = f;
    return cpu;
}
#else
/* Other architectures: their baseline (NEON on aarch64) is all the kernels ask for. */
static fastmlp_cpu fastmlp_read_cpu(void) {
    fastmlp_cpu cpu;
    memset(&cpu, 0, sizeof cpu);
    return cpu;
}
#endif

#endif
