// quant/rtn.cpp — scalar reference of auto-round's int_sym / int_asym fake quantization and plain RTN
// (formulas in rtn.h; docs/autoround-algorithm.md §2.2, §2.3, §3.1). Deliberately simple loops: this is
// the reference the tuner and the CUDA kernels are checked against, not a fast path.
#include "quant/rtn.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include "core/bf16.h"
#include "core/error.h"

namespace autoround {

namespace {

// round half to even (torch.round); std::nearbyint uses the current mode, which is to-nearest-even.
inline float rint_even(float x) { return std::nearbyint(x); }

inline float clamp01(float t) { return std::min(std::max(t, 0.f), 1.f); }

inline float to_scale_dtype(float s, const QdqOptions& opt) { return opt.fp16_scale ? fp16_to_float(float_to_fp16(s)) : s; }

void check_opts(const QdqOptions& opt, const std::string& what) {
    check(opt.scheme.bits >= 1 && opt.scheme.bits <= 8, what, ": bits must be in 1..8, got ", opt.scheme.bits);
    check(opt.scheme.group_size == -1 || opt.scheme.group_size > 0, what,
          ": group_size must be -1 or positive (0 = per-tensor is not supported), got ", opt.scheme.group_size);
}

}  // namespace

float scale_threshold(const QdqOptions& opt) {
    // The reference clamps the already-cast scale tensor, so with fp16 scales the bound is fp16(1e-5).
    return opt.fp16_scale ? fp16_to_float(float_to_fp16(1e-5f)) : 1e-8f;
}

GroupQuant quantize_group(const float* x, const float* v, int64_t n, float alpha, float beta, const QdqOptions& opt,
                          uint8_t* codes) {
    const int bits = opt.scheme.bits;
    const float tau = scale_threshold(opt);
    alpha = clamp01(alpha);
    beta = clamp01(beta);
    float wmin = 0.f, wmax = 0.f;  // min(0, min x), max(0, max x)
    for (int64_t j = 0; j < n; ++j) {
        wmin = std::min(wmin, x[j]);
        wmax = std::max(wmax, x[j]);
    }
    GroupQuant r;
    if (opt.scheme.sym) {
        const float Q = static_cast<float>(1 << (bits - 1));
        const float a = -(wmin * alpha);
        const float b = wmax * beta;
        const float m = (b < a) ? a : -b;  // = +max(a,b) if b < a, else -max(a,b)
        float s = to_scale_dtype(m / Q, opt);
        s = (s < 0.f) ? std::min(s, -tau) : std::max(s, tau);
        for (int64_t j = 0; j < n; ++j) {
            const float u = x[j] / s + (v ? v[j] : 0.f);
            const float q = std::clamp(rint_even(u), -Q, Q - 1.f);
            codes[j] = static_cast<uint8_t>(static_cast<int32_t>(q) + (1 << (bits - 1)));
        }
        r.scale = s;
        r.zero = 1 << (bits - 1);
    } else {
        const float Qa = static_cast<float>((1 << bits) - 1);
        const float lo = wmin * alpha, hi = wmax * beta;
        const float s = std::max(to_scale_dtype((hi - lo) / Qa, opt), tau);
        const float z = rint_even(-lo / s);
        // -lo <= hi - lo and the fp16 cast moves s by < 2^-11 relative, so z <= Qa; checked anyway.
        check(z >= 0.f && z <= Qa, "asym quantization: zero point ", z, " outside [0, ", Qa, "]");
        for (int64_t j = 0; j < n; ++j) {
            const float rr = rint_even(x[j] / s + (v ? v[j] : 0.f));
            codes[j] = static_cast<uint8_t>(std::clamp(rr + z, 0.f, Qa));
        }
        r.scale = s;
        r.zero = static_cast<int32_t>(z);
    }
    return r;
}

QuantizedTensor quantize(std::span<const float> w, int64_t out, int64_t in, std::span<const float> v,
                         std::span<const float> alpha, std::span<const float> beta, const QdqOptions& opt,
                         const std::string& name) {
    const std::string what = (name.empty() ? std::string("weight") : name) + " [" + std::to_string(out) + ", " +
                             std::to_string(in) + "]";
    check_opts(opt, what);
    check(out > 0 && in > 0, what, ": shape must be positive");
    check(static_cast<int64_t>(w.size()) == out * in, what, ": holds ", w.size(), " values, expected ", out * in);
    const int64_t G = effective_group_len(opt.scheme.group_size, in), ng = num_groups(opt.scheme.group_size, in);
    check(v.empty() || static_cast<int64_t>(v.size()) == out * ng * G, what, ": V holds ", v.size(),
          " values, expected [out, n_groups * G] = [", out, ", ", ng * G, "]");
    check(alpha.empty() || static_cast<int64_t>(alpha.size()) == out * ng, what, ": min_scale holds ", alpha.size(),
          " values, expected [out, n_groups] = [", out, ", ", ng, "]");
    check(beta.empty() || static_cast<int64_t>(beta.size()) == out * ng, what, ": max_scale holds ", beta.size(),
          " values, expected [out, n_groups] = [", out, ", ", ng, "]");
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (w.size() > (1u << 16))
    for (size_t i = 0; i < w.size(); ++i) finite = finite && std::isfinite(w[i]);
    if (!finite)
        for (size_t i = 0; i < w.size(); ++i)
            if (!std::isfinite(w[i])) fail(what, ": value at [", i / in, ", ", i % in, "] is not finite");

    QuantizedTensor q;
    q.name = name;
    q.bits = opt.scheme.bits;
    q.group_size = opt.scheme.group_size;
    q.sym = opt.scheme.sym;
    q.out_features = out;
    q.in_features = in;
    q.codes.resize(static_cast<size_t>(out * in));
    q.scales.resize(static_cast<size_t>(out * ng));
    q.zeros.resize(static_cast<size_t>(out * ng));

    // rows are independent: threads over rows give the same codes as one thread (a 4B block's 7 layers, ~100M
    // weights, took ~1 s per block on one thread at the end of GPU tuning)
    std::exception_ptr error;  // a failing row's error (an exception must not leave the parallel region)
#pragma omp parallel for schedule(static) if (out * in > (1 << 16))
    for (int64_t r = 0; r < out; ++r) {
        try {
            std::vector<float> xbuf(static_cast<size_t>(G));
            std::vector<uint8_t> cbuf(static_cast<size_t>(G));
            for (int64_t g = 0; g < ng; ++g) {
                const int64_t k0 = g * G, len = std::min(G, in - k0);
                std::fill(xbuf.begin(), xbuf.end(), 0.f);  // zero padding of a partial last group
                std::copy_n(w.data() + r * in + k0, len, xbuf.begin());
                const size_t gi = static_cast<size_t>(r * ng + g);
                const float* vg = v.empty() ? nullptr : v.data() + gi * static_cast<size_t>(G);
                const GroupQuant gq = quantize_group(xbuf.data(), vg, G, alpha.empty() ? 1.f : alpha[gi],
                                                     beta.empty() ? 1.f : beta[gi], opt, cbuf.data());
                std::copy_n(cbuf.begin(), len, q.codes.begin() + r * in + k0);  // padding codes are dropped
                q.scales[gi] = gq.scale;
                q.zeros[gi] = gq.zero;
            }
        } catch (...) {
#pragma omp critical(autoround_quantize_error)
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
    return q;
}

std::vector<float> qdq(std::span<const float> w, int64_t out, int64_t in, std::span<const float> v,
                       std::span<const float> alpha, std::span<const float> beta, const QdqOptions& opt) {
    return quantize(w, out, in, v, alpha, beta, opt).dequantize();
}

QuantizedTensor quantize_rtn(std::span<const float> w, int64_t out, int64_t in, const QdqOptions& opt,
                             const std::string& name) {
    return quantize(w, out, in, {}, {}, {}, opt, name);
}

}  // namespace autoround
