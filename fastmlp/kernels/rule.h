/* How a mini-batch's finished gradient sums become a step: the optimizer's
 * rule and its factors for this step (fastmlp.reference, rules 7 and 10),
 * the same for every weight. The factors are values of the trainer's dtype,
 * held in doubles, which hold every float exactly; element.h takes the step
 * of one weight and of a vector of them. */
#ifndef FASTMLP_RULE_H
#define FASTMLP_RULE_H

/* The rules: SGD's plain step, with momentum, with Nesterov's momentum, and Adam. */
enum { FASTMLP_PLAIN = 0, FASTMLP_MOMENTUM = 1, FASTMLP_NESTEROV = 2, FASTMLP_ADAM = 3 };

typedef struct {
    int kind;
    double step, decay, mu;  /* rule 7: s = η/m, the decay factor d, μ */
    /* Adam (rule 10): r = 1/m, β1, c1 = 1 − β1, β2, c2 = 1 − β2, k = 1/√(1 − β2^t), ε, a = η/(1 − β1^t) */
    double scale, beta1, rest1, beta2, rest2, root, eps, rate;
    /* Adam: the second moments lie this many values after the first ones, in the same layout. */
    Py_ssize_t second;
} fastmlp_rule;

#endif
