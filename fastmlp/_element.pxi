# Included by _kernels.pyx: one element (see its docstring for the layers).

cdef extern from "kernels/kernels.h" nogil:
    # fastmlp.reference.exp, shared with the vector activations below.
    double exp_f64(double x)
    float exp_f32(float x)
    # activate() on the units of a layer, a vector of them at a time.
    void activate_units_f64(int rows, double* const* z, const double* bias, Py_ssize_t n,
                            int kind)
    void activate_units_f32(int rows, float* const* z, const float* bias, Py_ssize_t n,
                            int kind)
    # acc + x·y as the module's arithmetic contract computes it (kernels/element.h).
    double madd_f64(double acc, double x, double y)
    float madd_f32(float acc, float x, float y)
    # The optimizer's rule and its factors for one step (kernels/rule.h), and its step on one
    # weight (kernels/element.h).
    enum:
        FASTMLP_PLAIN
        FASTMLP_MOMENTUM
        FASTMLP_NESTEROV
        FASTMLP_ADAM
    ctypedef struct Rule "fastmlp_rule":
        int kind
        double step, decay, mu, scale, beta1, rest1, beta2, rest2, root, eps, rate
        Py_ssize_t second
    void take_step_f64(double* w, double s, const Rule* rule, double* state)
    void take_step_f32(float* w, float s, const Rule* rule, float* state)

cpdef enum:
    # The optimizers' rules; fastmlp/trainer.py maps the trainer's settings to them.
    PLAIN = FASTMLP_PLAIN
    MOMENTUM = FASTMLP_MOMENTUM
    NESTEROV = FASTMLP_NESTEROV
    ADAM = FASTMLP_ADAM


cdef struct Optimizer:
    # What an epoch's steps use, as given: the rule, and in float64 the epoch's η, the decay
    # factor d, μ, Adam's β1, β2 and ε. Each step's Rule rounds them to the dtype.
    int kind
    double eta, decay, mu, beta1, beta2, eps


cdef inline void step_rule(Rule* rule, const Optimizer* opt, Py_ssize_t m, double* powers,
                           Py_ssize_t second, const floating* any) noexcept nogil:
    """The Rule of one step over m examples (fastmlp.reference, rules 7 and 10), each factor
    rounded to the dtype of ``any`` once; for Adam, after the powers β1^t and β2^t advance
    (powers[0] and powers[1], in float64), and with the second moments ``second`` values
    after the first."""
    cdef floating one = 1
    rule.kind = opt.kind
    rule.step = <floating>opt.eta / <floating>m
    rule.decay = <floating>opt.decay
    rule.mu = <floating>opt.mu
    rule.second = second
    if opt.kind == ADAM:
        powers[0] = powers[0] * opt.beta1
        powers[1] = powers[1] * opt.beta2
        rule.scale = one / <floating>m
        rule.beta1 = <floating>opt.beta1
        rule.rest1 = one - <floating>opt.beta1
        rule.beta2 = <floating>opt.beta2
        rule.rest2 = one - <floating>opt.beta2
        rule.root = <floating>(1.0 / sqrt(1.0 - powers[1]))
        rule.rate = <floating>(opt.eta / (1.0 - powers[0]))
        rule.eps = <floating>opt.eps


cdef inline floating madd(floating acc, floating x, floating y) noexcept nogil:
    """acc + x·y, the multiply-add of the contract: rounded twice, or once where the module is
    built for the fused contract (FUSED_CONTRACT)."""
    if floating is double:
        return madd_f64(acc, x, y)
    else:
        return madd_f32(acc, x, y)


cdef inline floating exp_(floating x) noexcept nogil:
    """e^x exactly as fastmlp.reference.exp computes it (kernels/element.h has its steps)."""
    if floating is double:
        return exp_f64(x)
    else:
        return exp_f32(x)


cdef inline floating log_(floating x) noexcept nogil:
    """ln x, never below −100, exactly as fastmlp.reference.log computes it (see its steps)."""
    cdef floating m, kf, s, h, z, p, r
    cdef int64_t e
    cdef uint64_t bits64
    cdef uint32_t bits32
    if not (x < <floating>INFINITY):  # NaN and +inf
        return x
    if x == 0:  # both zeros: −0 is not < 0, and its sign bit must not reach the exponent
        return -100
    if x < 0:
        if floating is double:
            bits64 = <uint64_t>0x7FF8000000000000  # NumPy's NaN
            memcpy(&r, &bits64, 8)
        else:
            bits32 = <uint32_t>0x7FC00000
            memcpy(&r, &bits32, 4)
        return r
    if floating is double:
        e = 0
        if x < 2.2250738585072014e-308:
            x = x * 18014398509481984.0  # 2^54
            e = -54
        memcpy(&bits64, &x, 8)
        e = e + <int64_t>(bits64 >> 52) - 1023
        bits64 = (bits64 & <uint64_t>0x000FFFFFFFFFFFFF) | <uint64_t>0x3FF0000000000000
        memcpy(&m, &bits64, 8)
        if m > 1.4142135623730951:
            m = m * 0.5
            e = e + 1
    else:
        e = 0
        if x < <float>1.1754943508222875e-38:
            x = x * <float>16777216.0  # 2^24
            e = -24
        memcpy(&bits32, &x, 4)
        e = e + <int64_t>(bits32 >> 23) - 127
        bits32 = (bits32 & <uint32_t>0x007FFFFF) | <uint32_t>0x3F800000
        memcpy(&m, &bits32, 4)
        if m > <float>1.4142135381698608:
            m = m * <float>0.5
            e = e + 1
    kf = <floating>e
    s = (m - <floating>1) / (m + <floating>1)
    h = s + s
    z = s * s
    if floating is double:
        p = 0.047619047619047616
        p = p * z + 0.05263157894736842
        p = p * z + 0.058823529411764705
        p = p * z + 0.06666666666666667
        p = p * z + 0.07692307692307693
        p = p * z + 0.09090909090909091
        p = p * z + 0.1111111111111111
        p = p * z + 0.14285714285714285
        p = p * z + 0.2
        p = p * z + 0.3333333333333333
        r = (kf * 2.8235290563031577e-13 + (h + (h * z) * p)) + kf * 0.693147180559663
    else:
        p = <float>0.09090909090909091
        p = p * z + <float>0.1111111111111111
        p = p * z + <float>0.14285714285714285
        p = p * z + <float>0.2
        p = p * z + <float>0.3333333333333333
        r = (kf * <float>1.428606765330187e-06 + (h + (h * z) * p)) + kf * <float>0.693145751953125
    if r < -100:
        r = -100
    return r


cdef inline floating activate(floating z, int kind) noexcept nogil:
    cdef floating t, v
    if kind == SIGMOID:
        return <floating>1 / (<floating>1 + exp_(-z))
    if kind == TANH:
        t = <floating>fabs(z)  # exact; the cast keeps exp_ in the dtype
        t = exp_(<floating>-2 * t)
        v = (<floating>1 - t) / (<floating>1 + t)
        return v if z >= 0 else -v
    # ReLU: NaN passes through, −0 becomes +0
    if z <= 0:
        return 0
    return z


cdef inline floating derivative(floating a, int kind) noexcept nogil:
    """σ'(z) from the activation a = σ(z)."""
    if kind == SIGMOID:
        return a * (<floating>1 - a)
    if kind == TANH:
        return <floating>1 - a * a
    if a > 0:
        return 1
    return 0


cdef void activate_rows(floating** z, Py_ssize_t rows, const floating* bias, Py_ssize_t n,
                        int kind) noexcept nogil:
    """z[i] ← activation(z[i] + bias) for the layer's units in ``rows`` examples' rows: in
    vectors of units when there are enough, the rows side by side (kernels/units.h);
    otherwise one loop per kind, so each stays simple."""
    cdef Py_ssize_t i, j
    cdef Py_ssize_t vector = vector_lanes(bias)
    if kind == SOFTMAX:
        for i in range(rows):
            softmax_(z[i], bias, n)
    elif kind == IDENTITY:
        for i in range(rows):
            for j in range(n):
                z[i][j] = z[i][j] + bias[j]
    elif vector and n >= vector:
        if floating is double:
            activate_units_f64(<int>rows, z, bias, n, kind)
        else:
            activate_units_f32(<int>rows, z, bias, n, kind)
    elif kind == SIGMOID:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], SIGMOID)
    elif kind == TANH:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], TANH)
    else:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], RELU)


cdef void softmax_(floating* z, const floating* bias, Py_ssize_t n) noexcept nogil:
    """z ← softmax(z + bias), as fastmlp.reference.softmax computes it."""
    cdef Py_ssize_t j
    cdef floating m, s
    for j in range(n):
        z[j] = z[j] + bias[j]
    m = z[0]
    for j in range(1, n):
        if z[j] > m:
            m = z[j]
    for j in range(n):
        z[j] = exp_(z[j] - m)
    s = z[0]
    for j in range(1, n):
        s = s + z[j]
    for j in range(n):
        z[j] = z[j] / s


cdef floating output_deltas(const Net* net, const floating* y, const floating* act,
                            floating* delta) noexcept nogil:
    """Fill ``delta`` with δ^L of one example (contract 4); return its cost e_x (contract 8)."""
    cdef Py_ssize_t L = net.n_layers
    cdef Py_ssize_t n_out = net.sizes[L]
    cdef const floating* a = act + net.a_off[L - 1]
    cdef floating* d = delta + net.a_off[L - 1]
    cdef floating diff, error = 0, term
    cdef Py_ssize_t j
    # One loop per cost, so that each stays simple.
    if net.cost == QUADRATIC:
        for j in range(n_out):
            diff = a[j] - y[j]
            # An identity output's σ' is 1, and diff·1 is diff.
            d[j] = diff if net.output == IDENTITY else diff * derivative(a[j], net.output)
            error = diff * diff if j == 0 else error + diff * diff
    else:  # ∂C_x/∂z^L = a − y for these costs and their output layers; e_x = −Σ_j term_j
        for j in range(n_out):
            d[j] = a[j] - y[j]
            if net.cost == CROSS_ENTROPY:
                term = y[j] * log_(a[j]) + (<floating>1 - y[j]) * log_(<floating>1 - a[j])
            else:
                term = y[j] * log_(a[j])
            error = term if j == 0 else error + term
        error = -error
    return error


cdef void note_alive(const Net* net, const floating* act, Py_ssize_t m,
                     Py_ssize_t* alive) noexcept nogil:
    """alive[l − 1] ← 1 for each layer l (1 … L) where some unit's derivative σ' is not 0 for
    one of the m examples whose activations are rows of act (``width`` apart). Only layers not
    yet found alive are looked at: in training that is, almost always, one unit per layer
    and epoch. (The caller marks the output layer alive where its σ' is no factor of δ^L.)"""
    cdef Py_ssize_t l, i, k
    cdef const floating* a
    cdef int kind
    # With dropout, drop_units notes the hidden layers, from the slopes σ'·m.
    for l in range(net.n_layers if net.dropping else 1, net.n_layers + 1):
        kind = net.output if l == net.n_layers else net.activation
        i = 0
        while not alive[l - 1] and i < m:
            a = act + i * net.width + net.a_off[l - 1]
            for k in range(net.sizes[l]):
                if derivative(a[k], kind) != 0:
                    alive[l - 1] = 1
                    break
            i += 1


cdef void drop_units(const Net* net, Py_ssize_t l, Py_ssize_t x, floating* a, floating* slope,
                     Py_ssize_t k0, Py_ssize_t k1) noexcept nogil:
    """Inverted dropout (rule 11) on units k0 … k1−1 of hidden layer l of example x (its row
    of X), whose activations are at ``a``: with m_k the mask, c if kept and 0 if not,
    slope_k ← σ'(a_k)·m_k, then a_k ← a_k·m_k. The slopes go where the deltas will be, which
    the backward pass reads (FASTMLP_SLOPES). Notes the layer alive, in the member's row of
    net.alive, where a slope is not 0."""
    cdef floating c = <floating>net.drop_scale, m, s
    cdef uint64_t first = <uint64_t>x * <uint64_t>net.width + <uint64_t>net.a_off[l - 1]
    cdef Py_ssize_t k
    cdef Py_ssize_t* alive = net.alive + team_rank() * net.n_layers + l - 1
    for k in range(k0, k1):
        m = c if kept(net.drop_key, first + <uint64_t>k, net.drop_threshold) else 0
        s = derivative(a[k], net.activation) * m
        if s != 0:
            alive[0] = 1
        slope[k] = s
        a[k] = a[k] * m


cdef inline void take_step(floating* w, floating* state, floating s,
                           const Rule* rule) noexcept nogil:
    """One weight's step from its finished sum s (the rule's, kernels/element.h), with its state
    (velocity, or Adam's first moment) at ``state``."""
    if floating is double:
        take_step_f64(w, s, rule, state)
    else:
        take_step_f32(w, s, rule, state)
