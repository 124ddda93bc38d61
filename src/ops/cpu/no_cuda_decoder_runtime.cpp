// ops/cpu/no_cuda_decoder_runtime.cpp — the CPU-only build's ops/cuda/decoder_runtime.h: constructing the GPU
// runtime explains that this binary was built without CUDA (the CLI refuses --device cuda before it gets here).
#ifndef AUTOROUND_HAVE_CUDA
#include "core/error.h"
#include "ops/cuda/decoder_runtime.h"

namespace autoround {

struct CudaDecoder::Impl {};

CudaDecoder::CudaDecoder(const DecoderDims&, const CudaDecoderOptions&) {
    fail("--device cuda: this autoround was built without CUDA; rebuild with -DAUTOROUND_CUDA=ON");
}
CudaDecoder::~CudaDecoder() = default;
void CudaDecoder::set_embedding(const uint16_t*) {}
void CudaDecoder::set_final_norm(const float*) {}
void CudaDecoder::set_lm_head(const HostLinear&) {}
void CudaDecoder::tie_lm_head_to_embedding() {}
void CudaDecoder::set_layer(int, const HostDecoderLayer&) {}
void CudaDecoder::reserve(int64_t) {}
int64_t CudaDecoder::capacity() const { return 0; }
int64_t CudaDecoder::size() const { return 0; }
void CudaDecoder::clear() {}
void CudaDecoder::set_position_delta(int64_t) {}
void CudaDecoder::forward(const int32_t*, int64_t, float*, bool) {}
int32_t CudaDecoder::forward_greedy(int32_t) { return 0; }
void CudaDecoder::set_history(const int32_t*, int64_t) {}
bool CudaDecoder::forward_top_k(int32_t, float, float, int, std::vector<int32_t>&, std::vector<float>&, float*) {
    return false;
}
double CudaDecoder::window_nll(const int32_t*, int64_t, std::vector<double>*) { return 0.0; }
size_t CudaDecoder::weight_bytes() const { return 0; }
size_t CudaDecoder::decode_read_bytes() const { return 0; }

}  // namespace autoround
#endif
