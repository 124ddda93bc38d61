// ops/cpu/no_cuda_block_engine.cpp — the CPU-only build's ops/cuda/block_engine.h: every entry point
// explains that this binary was built without CUDA (the CLI refuses --device cuda before it gets here).
#ifndef AUTOROUND_HAVE_CUDA
#include "core/error.h"
#include "ops/cuda/block_engine.h"

namespace autoround {

struct CudaBlockEngine::Impl {};

CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>&, int64_t, int64_t, int64_t, const float*, const float*) {
    fail("--device cuda: this autoround was built without CUDA; rebuild with -DAUTOROUND_CUDA=ON");
}
CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>&, int64_t, int64_t, int64_t, const float*, const float*,
                                 const CudaBlockEngineOptions&) {
    fail("--device cuda: this autoround was built without CUDA; rebuild with -DAUTOROUND_CUDA=ON");
}
CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>&, int64_t, const CudaActivations&,
                                 const CudaActivations*, const CudaBlockEngineOptions&) {
    fail("--device cuda: this autoround was built without CUDA; rebuild with -DAUTOROUND_CUDA=ON");
}
CudaBlockEngine::~CudaBlockEngine() = default;
void CudaBlockEngine::forward_all(CudaActivations&) {}
double CudaBlockEngine::masked_mse_all(const CudaActivations&, const CudaActivations&, bool) { return 0.0; }

CudaActivations::CudaActivations(int64_t, int64_t, int64_t, ActivationStorage) {
    fail("--device cuda: this autoround was built without CUDA; rebuild with -DAUTOROUND_CUDA=ON");
}
CudaActivations::CudaActivations(int64_t n, int64_t L, int64_t H, const float*, ActivationStorage st)
    : CudaActivations(n, L, H, st) {}
CudaActivations::~CudaActivations() = default;
void CudaActivations::copy_from(const CudaActivations&) {}
void CudaActivations::download(float*) const {}
void CudaActivations::upload(const float*) {}
void CudaBlockEngine::set_weight(int, const float*) {}
double CudaBlockEngine::forward_backward(const int64_t*, int64_t, bool, double, bool) { return 0.0; }
double CudaBlockEngine::quantize_forward_backward(const int64_t*, int64_t, bool, double) { return 0.0; }
void CudaBlockEngine::get_weight_grad(int, float*) const {}
void CudaBlockEngine::forward_all(float*) {}
void CudaBlockEngine::set_train_inputs(const float*) {}
int CudaBlockEngine::add_tuned_layer(int, const FakeQuantShape&, const FakeQuantConfig&, bool, const float*, const float*,
                                     const float*) {
    return 0;
}
void CudaBlockEngine::quantize_tuned_layers() {}
void CudaBlockEngine::step_tuned_layers(const std::vector<std::array<float, 2>>&) {}
void CudaBlockEngine::snapshot_tuned_layers() {}
void CudaBlockEngine::quantize_best_tuned_layers() {}
std::unique_ptr<CudaTunedParams> CudaBlockEngine::take_best_params() { return nullptr; }
struct CudaTunedParams::Impl {};
CudaTunedParams::CudaTunedParams(std::unique_ptr<Impl> p) : p_(std::move(p)) {}
CudaTunedParams::~CudaTunedParams() = default;
int CudaTunedParams::layers() const { return 0; }
void CudaTunedParams::download(int, std::vector<float>&, std::vector<float>&, std::vector<float>&) const {}
void CudaBlockEngine::get_tuned_params(int, bool, std::vector<float>&, std::vector<float>&, std::vector<float>&) const {}

}  // namespace autoround
#endif
