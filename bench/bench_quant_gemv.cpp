// bench/bench_quant_gemv.cpp — the decode matrix–vector kernels (ops/cuda/quant_gemv.h) against the device's copy
// bandwidth: quant_gemv on the linear layers of a Qwen3-4B and a Qwen3-8B block (fused q|k|v, o, fused gate|up,
// down; bits 4, group 128 by default), bf16_gemv on the LM head and a 4096 × 4096 layer, and quant_dequantize_bf16
// (the prefill path) on the same packed shapes; quant_gemv_fast (no per-weight bf16 rounding) on the same shapes,
// plain and with the prologue decode fuses into that layer (RMSNorm before q|k|v and gate|up, SwiGLU before down).
//
// Copy bandwidth: cudaMemcpyAsync device-to-device of 1 GiB, GB/s = 2 · bytes / time (each byte read and written).
// Per kernel: µs per call, the bytes a call must move (quant_gemv: qweight + scales + zeros + x + y; bf16_gemv: w + x
// + y; dequantize: qweight + scales + zeros read + the bf16 output written), GB/s = bytes / time and its fraction of
// the copy bandwidth. quant_gemv is timed both as y = (the k split's zeroing memset included) and y += (the residual
// stream).
// Timing: the calls are captured in a CUDA graph (as the decode runtime replays them) that cycles through enough
// copies of the weight for the copies to exceed 3× the L2 cache, so every call reads its weight from device memory;
// µs per call = the graph's time / its calls, mean over --iters replays after 2 warm-ups (cudaEvent timing).
// Usage: bench_quant_gemv [--bits 4] [--group 128] [--iters 20] [--filter SUBSTRING (of "4B gate|up" etc.)]
// Built in every benchmark build; without CUDA (AUTOROUND_HAVE_CUDA undefined) it only says so.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"

#ifdef AUTOROUND_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>
#include <memory>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/quant_gemv.h"

using namespace autoround;
using namespace bench;  // bench_util.h: flags, cuda_ok, Buf, Rng, elapsed_ms

namespace {

struct Shape {
    const char* model;
    const char* layer;
    int64_t n, k;  // weight [n, k]
};
constexpr Shape kQuantShapes[] = {
    {"4B", "q|k|v", 6144, 2560}, {"4B", "o", 2560, 4096}, {"4B", "gate|up", 19456, 2560}, {"4B", "down", 2560, 9728},
    {"8B", "q|k|v", 6144, 4096}, {"8B", "o", 4096, 4096}, {"8B", "gate|up", 24576, 4096}, {"8B", "down", 4096, 12288},
};
constexpr Shape kBf16Shapes[] = {{"4B", "lm_head", 151936, 2560}, {"8B", "o (bf16)", 4096, 4096}};

// `copies` buffers of `bytes` each, the first filled by fill(host bytes), the others copied from it.
std::vector<std::unique_ptr<Buf>> replicate(size_t bytes, int copies,
                                            const std::function<void(std::vector<uint8_t>&)>& fill) {
    std::vector<uint8_t> h(bytes);
    fill(h);
    std::vector<std::unique_ptr<Buf>> v;
    for (int c = 0; c < copies; ++c) {
        v.push_back(std::make_unique<Buf>(bytes));
        cuda_ok(cudaMemcpy(v.back()->p, h.data(), bytes, cudaMemcpyHostToDevice), "upload");
    }
    return v;
}

// Mean µs per call of `calls` calls of call(i) captured in one graph (i = 0 .. calls − 1), replayed `iters` times.
double time_graph_us(const std::function<void(int, cudaStream_t)>& call, int calls, int iters, cudaStream_t st) {
    cudaGraph_t g = nullptr;
    cudaGraphExec_t ex = nullptr;
    cuda_ok(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal), "capture");
    for (int i = 0; i < calls; ++i) call(i, st);
    cuda_ok(cudaStreamEndCapture(st, &g), "capture");
    cuda_ok(cudaGraphInstantiate(&ex, g, 0), "instantiate");
    for (int w = 0; w < 2; ++w) cuda_ok(cudaGraphLaunch(ex, st), "graph launch");
    const double ms = elapsed_ms(
        [&] {
            for (int r = 0; r < iters; ++r) cuda_ok(cudaGraphLaunch(ex, st), "graph launch");
        },
        st);
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
    return ms * 1e3 / (double(iters) * calls);
}

// Copies for the weights to exceed 3× L2, and calls per graph (a multiple of the copies, ≥ 256 MB of traffic).
void plan(size_t bytes, size_t l2, int& copies, int& calls) {
    copies = int(std::max<size_t>(1, (3 * l2 + bytes - 1) / bytes));
    const int want = int(std::min<size_t>(2000, std::max<size_t>(1, (size_t(256) << 20) / bytes)));
    calls = std::max(copies, (want + copies - 1) / copies * copies);
}

struct Row {
    std::string kernel, shape;
    double mb, us, gbs, frac;
};

void print_table(const std::vector<Row>& rows, double copy_gbs) {
    std::printf("\n| kernel | layer [n × k] | MB / call | µs / call | GB/s | of copy BW (%.0f GB/s) |\n", copy_gbs);
    std::printf("|---|---|---:|---:|---:|---:|\n");
    for (const Row& r : rows)
        std::printf("| %s | %s | %.2f | %.2f | %.0f | %.0f%% |\n", r.kernel.c_str(), r.shape.c_str(), r.mb, r.us, r.gbs,
                    100.0 * r.frac);
}

}  // namespace

int main(int argc, char** argv) {
    int bits = 4, iters = 20;
    int64_t group = 128;
    std::string filter;
    if (!Flags()
             .value("--bits", bits)
             .value("--group", group)
             .value("--iters", iters)
             .value("--filter", filter)
             .parse(argc, argv))
        return 1;
    try {
        const auto devs = cuda_devices_or_complain();
        if (devs.empty()) return 1;
        int l2i = 0;
        cuda_ok(cudaDeviceGetAttribute(&l2i, cudaDevAttrL2CacheSize, 0), "L2 size");
        const size_t l2 = size_t(l2i);
        std::printf("device %s (sm_%d%d, %d SMs, L2 %.0f MB); bits %d, group %lld; %d graph replays after 2 warm-ups\n",
                    devs[0].name.c_str(), devs[0].sm_major, devs[0].sm_minor, devs[0].multiprocessors, l2 / 1e6, bits,
                    (long long)group, iters);
        cudaStream_t st;
        cuda_ok(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "stream");

        // ---- copy bandwidth
        double copy_gbs = 0;
        {
            const size_t bytes = size_t(1) << 30;
            Buf a(bytes), b(bytes);
            cuda_ok(cudaMemset(a.p, 1, bytes), "memset");
            for (int w = 0; w < 2; ++w) cuda_ok(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, st), "copy");
            const int reps = 10;
            const double ms = elapsed_ms(
                [&] {
                    for (int r = 0; r < reps; ++r)
                        cuda_ok(cudaMemcpyAsync(r % 2 ? a.p : b.p, r % 2 ? b.p : a.p, bytes, cudaMemcpyDeviceToDevice,
                                                st),
                                "copy");
                },
                st);
            copy_gbs = 2.0 * double(bytes) * reps / (ms * 1e-3) / 1e9;
            std::printf("copy bandwidth (cudaMemcpy D2D, 1 GiB, read + write): %.0f GB/s\n", copy_gbs);
        }

        std::vector<Row> rows;
        Rng rng{0x9E3779B97F4A7C15ull};
        // ---- quant_gemv and quant_dequantize_bf16
        const auto skip = [&](const Shape& s) {
            return !filter.empty() && (std::string(s.model) + " " + s.layer).find(filter) == std::string::npos;
        };
        for (const Shape& s : kQuantShapes) {
            if (skip(s)) continue;
            const int64_t ng = s.k / group;
            const size_t qb = size_t(s.k * bits / 32) * size_t(s.n) * 4, sb = size_t(ng * s.n) * 2,
                         zb = size_t(ng * s.n);
            const size_t wbytes = qb + sb + zb;
            int copies = 1, calls = 1;
            plan(wbytes, l2, copies, calls);
            auto qw = replicate(qb, copies, [&](std::vector<uint8_t>& h) {
                for (auto& b : h) b = uint8_t(rng.next());
            });
            auto sc = replicate(sb, copies, [&](std::vector<uint8_t>& h) {
                for (size_t i = 0; i < h.size(); i += 2) {
                    const uint16_t v = float_to_fp16(0.002f + 0.02f * rng.uniform());
                    h[i] = uint8_t(v), h[i + 1] = uint8_t(v >> 8);
                }
            });
            auto ze = replicate(zb, copies, [&](std::vector<uint8_t>& h) {
                for (auto& b : h) b = uint8_t(rng.next() % (1u << bits));
            });
            std::vector<DeviceQuantWeight> w(static_cast<size_t>(copies));
            for (int c = 0; c < copies; ++c) {
                w[size_t(c)].qweight = qw[size_t(c)]->as<uint32_t>();
                w[size_t(c)].scales = sc[size_t(c)]->as<uint16_t>();
                w[size_t(c)].zeros = ze[size_t(c)]->as<uint8_t>();
                w[size_t(c)].n = s.n;
                w[size_t(c)].k = s.k;
                w[size_t(c)].bits = bits;
                w[size_t(c)].group_len = group;
            }
            Buf x(size_t(s.k) * 4), y(size_t(s.n) * 4);
            {
                std::vector<float> hx(size_t(s.k));
                for (auto& v : hx) v = rng.uniform() - 0.5f;
                cuda_ok(cudaMemcpy(x.p, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice), "upload");
                cuda_ok(cudaMemset(y.p, 0, size_t(s.n) * 4), "memset");
            }
            const size_t bytes = wbytes + size_t(s.k) * 4 + size_t(s.n) * 4;
            const std::string shape = std::string(s.model) + " " + s.layer + " [" + std::to_string(s.n) + " × " +
                                      std::to_string(s.k) + "]";
            for (const bool acc : {false, true}) {
                const double us = time_graph_us(
                    [&](int i, cudaStream_t t) {
                        quant_gemv(w[size_t(i % copies)], x.as<float>(), y.as<float>(), acc, t);
                    },
                    calls, iters, st);
                const double gbs = double(bytes) / (us * 1e-6) / 1e9;
                rows.push_back({std::string("quant_gemv ") + (acc ? "y +=" : "y ="), shape, bytes / 1e6, us, gbs,
                                gbs / copy_gbs});
            }
            // quant_gemv_fast: plain x (y = and y +=), and the fused prologue decode uses for this layer (RMSNorm
            // before q|k|v and gate|up, SwiGLU before down; the extra input bytes are counted)
            Buf gu(size_t(s.k) * 8), nw(size_t(s.k) * 4);
            {
                std::vector<float> h(size_t(2 * s.k));
                for (auto& v : h) v = rng.uniform() - 0.5f;
                cuda_ok(cudaMemcpy(gu.p, h.data(), h.size() * 4, cudaMemcpyHostToDevice), "upload");
                for (auto& v : h) v = 0.9f + 0.2f * rng.uniform();
                cuda_ok(cudaMemcpy(nw.p, h.data(), size_t(s.k) * 4, cudaMemcpyHostToDevice), "upload");
            }
            const std::string layer = s.layer;
            const bool is_down = layer == "down", is_norm = layer == "q|k|v" || layer == "gate|up";
            for (int variant = 0; variant < 3; ++variant) {
                if (variant == 2 && !is_down && !is_norm) continue;
                GemvInput in;
                in.src = x.as<float>();
                size_t extra = 0;
                std::string name = variant == 0 ? "quant_gemv_fast y =" : "quant_gemv_fast y +=";
                if (variant == 2 && is_norm) {
                    in.op = GemvPrologue::RmsNorm;
                    in.norm_w = nw.as<float>();
                    extra = size_t(s.k) * 4;
                    name = "quant_gemv_fast RMSNorm y +=";
                } else if (variant == 2) {
                    in.op = GemvPrologue::SwiGlu;
                    in.src = gu.as<float>();
                    extra = size_t(s.k) * 4;
                    name = "quant_gemv_fast SwiGLU y +=";
                }
                const bool acc = variant != 0;
                const double us = time_graph_us(
                    [&](int i, cudaStream_t t) { quant_gemv_fast(w[size_t(i % copies)], in, y.as<float>(), acc, t); },
                    calls, iters, st);
                const double gbs = double(bytes + extra) / (us * 1e-6) / 1e9;
                rows.push_back({name, shape, (bytes + extra) / 1e6, us, gbs, gbs / copy_gbs});
            }
            {  // dequantize: read the packed weight, write bf16 [n, k]
                Buf out(size_t(s.n * s.k) * 2);
                const size_t dbytes = wbytes + size_t(s.n * s.k) * 2;
                int dc = 1, dcalls = 1;
                plan(dbytes, l2, dc, dcalls);
                dcalls = std::max(copies, (dcalls + copies - 1) / copies * copies);
                const double us = time_graph_us(
                    [&](int i, cudaStream_t t) { quant_dequantize_bf16(w[size_t(i % copies)], out.as<uint16_t>(), t); },
                    dcalls, iters, st);
                const double gbs = double(dbytes) / (us * 1e-6) / 1e9;
                rows.push_back({"quant_dequantize_bf16", shape, dbytes / 1e6, us, gbs, gbs / copy_gbs});
            }
        }
        // ---- bf16_gemv
        for (const Shape& s : kBf16Shapes) {
            if (skip(s)) continue;
            const size_t wbytes = size_t(s.n * s.k) * 2;
            int copies = 1, calls = 1;
            plan(wbytes, l2, copies, calls);
            auto wb = replicate(wbytes, copies, [&](std::vector<uint8_t>& h) {
                for (size_t i = 0; i < h.size(); i += 2) {
                    const uint16_t v = float_to_bf16(0.05f * (rng.uniform() - 0.5f));
                    h[i] = uint8_t(v), h[i + 1] = uint8_t(v >> 8);
                }
            });
            Buf x(size_t(s.k) * 4), y(size_t(s.n) * 4);
            cuda_ok(cudaMemset(x.p, 0, size_t(s.k) * 4), "memset");
            const size_t bytes = wbytes + size_t(s.k) * 4 + size_t(s.n) * 4;
            const double us = time_graph_us(
                [&](int i, cudaStream_t t) {
                    bf16_gemv(wb[size_t(i % copies)]->as<uint16_t>(), s.n, s.k, x.as<float>(), y.as<float>(), false, t);
                },
                calls, iters, st);
            const double gbs = double(bytes) / (us * 1e-6) / 1e9;
            rows.push_back({"bf16_gemv", std::string(s.model) + " " + s.layer + " [" + std::to_string(s.n) + " × " +
                                             std::to_string(s.k) + "]",
                            bytes / 1e6, us, gbs, gbs / copy_gbs});
        }
        print_table(rows, copy_gbs);
        for (const Row& r : rows)
            std::printf("{\"bench\":\"quant_gemv\",\"kernel\":\"%s\",\"shape\":\"%s\",\"bits\":%d,\"group\":%lld,"
                        "\"us\":%.3f,\"gbs\":%.1f,\"copy_gbs\":%.1f}\n",
                        r.kernel.c_str(), r.shape.c_str(), bits, (long long)group, r.us, r.gbs, copy_gbs);
        cudaStreamDestroy(st);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

#else
int main() {
    std::printf("bench_quant_gemv: built without CUDA (configure with -DAUTOROUND_CUDA=ON)\n");
    return 0;
}
#endif
