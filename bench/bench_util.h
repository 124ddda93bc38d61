// bench/bench_util.h — header-only helpers shared by the benchmarks (bench_fp8_gemm, bench_flash_attention,
// bench_quant_gemv, bench_block_step): the command-line flag parser, wall-clock time and the median, a fast
// xorshift64* generator, and (CUDA builds) error checks, a device buffer, random bf16 uploads and cudaEvent timing.
//
// Why: every benchmark parsed `--name value` flags, timed with events and checked CUDA calls the same way; one copy
// keeps their flags' behaviour (and the error messages the scripts see) the same. A header, not a .cpp: CMake builds
// one executable per bench/*.cpp.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#ifdef AUTOROUND_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cuda/device_info.h"
#endif

namespace bench {

// Command-line flags, each bound to a variable that holds its default: `--name value` flags (value()) and value-less
// switches (flag(): sets the variable to set_to). parse() reads argv[1..argc) in order; a switch is matched first, any
// other argument takes the next one as its value: "flag X needs a value" when there is none, "unknown flag X" when
// the name is not registered (both on stderr, parse returns false). A value that does not convert throws
// (std::stoi / std::stoll / std::stod).
class Flags {
public:
    Flags& value(const char* name, int& v) {
        return add(name, true, [&v](const std::string& s) { v = std::stoi(s); });
    }
    Flags& value(const char* name, int64_t& v) {
        return add(name, true, [&v](const std::string& s) { v = std::stoll(s); });
    }
    Flags& value(const char* name, double& v) {
        return add(name, true, [&v](const std::string& s) { v = std::stod(s); });
    }
    Flags& value(const char* name, std::string& v) {
        return add(name, true, [&v](const std::string& s) { v = s; });
    }
    Flags& flag(const char* name, bool& v, bool set_to = true) {
        return add(name, false, [&v, set_to](const std::string&) { v = set_to; });
    }

    bool parse(int argc, char** argv) const {
        for (int i = 1; i < argc; ++i) {
            const std::string k = argv[i];
            if (const Entry* e = find(k, false)) {
                e->set(std::string());
                continue;
            }
            if (i + 1 >= argc) {
                std::fprintf(stderr, "flag %s needs a value\n", k.c_str());
                return false;
            }
            const std::string v = argv[++i];
            const Entry* e = find(k, true);
            if (!e) {
                std::fprintf(stderr, "unknown flag %s\n", k.c_str());
                return false;
            }
            e->set(v);
        }
        return true;
    }

private:
    struct Entry {
        std::string name;
        bool takes_value;
        std::function<void(const std::string&)> set;
    };
    Flags& add(const char* name, bool takes_value, std::function<void(const std::string&)> set) {
        entries_.push_back({name, takes_value, std::move(set)});
        return *this;
    }
    const Entry* find(const std::string& name, bool takes_value) const {
        for (const Entry& e : entries_)
            if (e.takes_value == takes_value && e.name == name) return &e;
        return nullptr;
    }
    std::vector<Entry> entries_;
};

// Seconds on the steady clock.
inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The upper median (v[size / 2] after sorting); 0 for an empty v.
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

// xorshift64*: fast uniform numbers for hundreds of millions of random weights.
struct Rng {
    uint64_t s;
    uint64_t next64() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    uint32_t next() { return uint32_t(next64() >> 32); }
    float uniform() { return float(next() >> 8) / float(1 << 24); }  // [0, 1)
    float symmetric() { return float(next64() >> 40) / float(1 << 23) - 1.f; }  // [-1, 1)
};

#ifdef AUTOROUND_HAVE_CUDA

inline void cuda_ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess) autoround::fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}
inline void blas_ok(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) autoround::fail("cuBLAS error ", int(s), " in ", what);
}

// The visible CUDA devices; empty (after "no CUDA device" on stderr) when there is none.
inline std::vector<autoround::CudaDeviceInfo> cuda_devices_or_complain() {
    auto devs = autoround::cuda_list_devices();
    if (devs.empty()) std::fprintf(stderr, "no CUDA device\n");
    return devs;
}

// Device memory of max(bytes, 16) bytes.
struct Buf {
    void* p = nullptr;
    explicit Buf(size_t bytes) { cuda_ok(cudaMalloc(&p, std::max<size_t>(bytes, 16)), "cudaMalloc"); }
    ~Buf() { cudaFree(p); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    template <typename T>
    T* as() const {
        return static_cast<T*>(p);
    }
};

// n bf16 values uniform in [-1, 1) · sd·√3 (variance sd²) from Rng{seed}, uploaded to b.
inline void upload_random_bf16(const Buf& b, size_t n, uint64_t seed, float sd) {
    std::vector<uint16_t> h(n);
    Rng rng{seed};
    for (size_t i = 0; i < n; ++i) h[i] = autoround::float_to_bf16(rng.symmetric() * sd * 1.7320508f);
    cuda_ok(cudaMemcpy(b.p, h.data(), n * 2, cudaMemcpyHostToDevice), "upload");
}

// ms between two events recorded on `stream` around enqueue() (which issues the work on that stream).
template <typename F>
double elapsed_ms(F&& enqueue, cudaStream_t stream = nullptr) {
    cudaEvent_t a, b;
    cuda_ok(cudaEventCreate(&a), "event");
    cuda_ok(cudaEventCreate(&b), "event");
    cuda_ok(cudaEventRecord(a, stream), "event");
    enqueue();
    cuda_ok(cudaEventRecord(b, stream), "event");
    cuda_ok(cudaEventSynchronize(b), "event");
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, a, b), "event");
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return double(ms);
}

// mean ms of `iters` runs of f after `warmup` runs (on the default stream)
template <typename F>
double time_ms(F&& f, int warmup, int iters) {
    for (int i = 0; i < warmup; ++i) f();
    return elapsed_ms([&] {
               for (int i = 0; i < iters; ++i) f();
           }) /
           iters;
}

#endif  // AUTOROUND_HAVE_CUDA

}  // namespace bench
