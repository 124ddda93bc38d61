// quant/signround_tuner.h — AutoRound's SignRound block tuner on CPU (autoround-algorithm.md §1.6–1.7,
// §2.4–2.8, §3.1–3.2): block by block, learn per-layer rounding offsets V and min/max scales α, β with
// signed gradient descent so that the fake-quantized block reproduces the full-precision block's output,
// then turn the best V, α, β into integer codes (QuantizedTensor) for the exporters.
//
// Why this shape: the model-level driver (quantize_model) only moves activations between blocks; all
// tuning happens in tune_block, which takes the block's cached inputs and targets directly so that tests
// can drive it with small synthetic inputs (and inject NaN).
//
// Data flow per block k (all float32, [n, L, H] = nsamples × seqlen × hidden, row-major):
//   fp_in   FP-chain input (block 0: token embeddings)        ref_out = FPBlock_k(fp_in)   (targets)
//   q_in    quantized-chain input (absent for block 0)        train on q_in if enable_quanted_input and
//                                                             it exists, else on fp_in
//   after tuning: q_in ← QBlock_k(q_in or fp_in) (QDQ weights, bf16-rounded as the reference's W_q),
//                 fp_in ← ref_out.
// Blocks outside --to_quant_block_names are run in full precision on both chains (the reference would
// feed one selected block straight into the next; that is only correct for contiguous selections).
//
// nblocks > 1 (auto-round's WrapperMultiblock, §1.7): up to nblocks consecutive selected blocks form a
// group, tuned jointly as one block: the group's input is the cached input of its first block, its
// target the FP output of its last block (FP chain through the group's blocks with unquantized weights),
// all the group's layers' V, α, β share one SignSGD step / lr schedule / IndexSampler (one sampler per
// group, as the reference builds one per quantize_block call), the loss is the masked MSE at the
// group's output, the best-loss snapshot covers the whole group, and the gradient reaches the earlier
// blocks through Qwen3BlockGrad::backward's dX. Afterwards q_in ← QGroup(q_in or fp_in). Groups are
// formed in model order; the last one may be shorter, and an unselected block (forwarded in FP) ends a
// group early. Joint tuning runs on the CPU only (quantize_model refuses opt.cuda with nblocks > 1; the
// CLI falls back to the CPU with a note). nblocks = 1 runs exactly the single-block code path.
//
// Tuning loop (§2.7), per iteration i of T = iters:
//   idx = IndexSampler.next_batch()  (global batch = min(n, batch_size·gradient_accumulate_steps); CPython
//         random emulation seeded once with `seed`, stream continuing across blocks)
//   clamp α, β to [0, 1] in place; W_q = fake_quant(W, V, α, β) for each quantized layer
//   for each sub-batch of batch_size: Y = QBlock(X[sub]); loss = masked MSE(Y, ref[sub]) (last token of each
//         sample masked, denominator B·L·H); backward of 1000·loss·(B_sub/B_global) accumulates dW_q
//   loss_i = Σ_sub loss_sub·B_sub/B_global  (mean squared error over the global batch; with equal sub-batches
//         this is the reference's logged value times a constant, so best-iterate choices are identical)
//   NaN/Inf loss -> Error naming the block and iteration (nothing is returned, nothing written)
//   if loss_i < best (strict): best = loss_i, snapshot V, α, β (before the step) unless not_use_best_mse
//   dynamic_max_gap early stop; dV, dα, dβ = fake_quant_backward(dW_q); SignSGD: p -= lr_i·sign(g), sign(0)=0
//   lr_i from PyTorch LinearLR(1 → 0, T) as the chained fp32 product (lr_schedule below).
// Numerics: the block runs in float32 (the reference autocasts to bf16); W_q is rounded to bf16 and the
// scale to fp16 exactly as the reference does.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/qwen3_block_grad.h"
#include "model/qwen3_vl_vision_block_grad.h"
#include "quant/python_random.h"
#include "quant/quantized_tensor.h"
#include "quant/scheme.h"

namespace autoround {

class Qwen3Model;
class TuningCheckpoint;

struct SignRoundOptions {
    int iters = 200;                      // 0 = RTN (plain with disable_opt_rtn, else optimized RTN §3.2)
    std::optional<double> lr;             // default 1/iters (2/iters for <=3-bit layers when iters >= 1000)
    std::optional<double> minmax_lr;      // default: lr (the user's, else the same per-bits rule)
    int batch_size = 8;                   // reduced to nsamples when fewer
    int gradient_accumulate_steps = 1;
    int nblocks = 1;                      // consecutive blocks tuned jointly (>= 1; CPU only when > 1)
    bool enable_minmax_tuning = true;     // off: α = β = 1 fixed
    bool enable_quanted_input = true;
    bool not_use_best_mse = false;
    int dynamic_max_gap = -1;             // > 0: stop when the best loss is this many iterations old
    bool disable_opt_rtn = false;         // iters 0: plain RTN instead of optimized RTN
    uint64_t seed = 42;                   // python random.seed for the mini-batch sampler
    bool mask_last_token = true;          // auto-round HEAD masks the last token of every sample (§2.4)
    bool progress = true;                 // per-block progress bars on stderr
    bool cuda = false;                    // block forward/backward on the GPU (ops/cuda/block_engine.h), with the
                                          // fake quantization and SignSGD there too (ops/cuda/fake_quant_device.h)
    bool cuda_host_fake_quant = false;    // with cuda: fake quantization and SignSGD on the host (the earlier
                                          // path, kept for A/B checks); default: on the device
    bool low_gpu_mem_usage = false;       // with cuda: cached inputs/targets stay in (pinned) host memory and each
                                          // sub-batch is copied to the GPU when used
    bool cuda_bf16 = false;               // the GPU block math on bf16 tensor cores (FP32 accumulate), as the
                                          // reference's autocast; false: FP32 pedantic GEMMs
    bool cuda_fp8_backward = false;       // with cuda_bf16: the backward GEMMs on FP8 tensor cores (Hopper+)
    bool cuda_graphs = false;             // with cuda_bf16, device-resident activations and the device fake
                                          // quantization, one sub-batch per step: each tuning iteration replays
                                          // two CUDA graphs (--enable_torch_compile)
};

// The learning rate of a layer with `bits` (SignRoundConfig.compute_lr / compute_minmax_lr).
double signround_lr(const SignRoundOptions& o, int bits);
double signround_minmax_lr(const SignRoundOptions& o, int bits);
// lr used at each iteration 0..iters-1: LinearLR(start 1, end 0, total iters) stepped once per iteration,
// computed like PyTorch on an fp32 tensor: l_0 = fp32(lr0), l_i = fp32(l_{i-1} · fp32(1 - 1/(T - i + 1))).
std::vector<float> lr_schedule(double lr0, int iters);
// SignSGD step on n parameters: p -= lr · sign(g), with sign(0) = 0 (and NaN gradients leave p unchanged).
void signsgd_step(float* p, const float* g, int64_t n, float lr);

// Tuned parameters of one layer (layouts of ops/cpu/fake_quant.h).
struct LayerParams {
    std::vector<float> V;      // [out, G·gs]
    std::vector<float> alpha;  // [out·G]
    std::vector<float> beta;   // [out·G]
};

struct BlockReport {
    std::string name;            // "model.layers.3"
    int index = 0;
    int layers = 0;              // quantized layers in the block
    std::string method;          // "signround", "rtn", "opt-rtn", "fp" (not selected; forwarded only)
    int iters_run = 0;           // < iters when dynamic_max_gap stopped early
    double initial_loss = 0;     // loss of iteration 0 (V = 0, α = β = 1: the RTN loss on that batch)
    double best_loss = 0;
    int best_iter = -1;
    double last_loss = 0;        // loss of the last iteration run
    double final_loss = -1;      // QBlock(training input) vs reference over all samples (-1: not computed)
    std::vector<double> losses;  // the loss of every iteration run
    double seconds = 0;          // the whole block (reference outputs, tuning, packing, next inputs)
    double tune_seconds = 0;     // the iteration loop only
    // where the loop's time went (hot spots): fake-quant forward of the weights, block forward (+ loss),
    // block backward, fake-quant backward + SignSGD update; on the GPU the block's forward, loss and backward are
    // one engine call (device_step_seconds; with the device fake quantization of one sub-batch it includes that too)
    double qdq_seconds = 0, forward_seconds = 0, backward_seconds = 0, update_seconds = 0, device_step_seconds = 0;
    // and outside the loop: the FP targets (this block's unquantized forward over all samples), the tuner's setup
    // (state, GPU engine, uploads), best parameters -> codes and QDQ weights, the quantized chain's forward + loss
    double targets_seconds = 0, setup_seconds = 0, finish_seconds = 0, chain_seconds = 0;
    // the codes and host QDQ weights computed on another thread while the GPU went on (not part of `seconds`)
    double background_seconds = 0;
    bool resumed = false;        // loaded from a resume checkpoint instead of tuned in this run
    // nblocks > 1: the group this block was tuned in ("model.layers.0-1"); the loss fields (initial,
    // best, last, final, losses), iters_run and the timings are the group's, shared by its blocks.
    // Empty when tuned on its own.
    std::string group;
};

// One block, given its cached inputs. `train_in` and `ref_out` are [n, L, H]. `layers` lists the
// quantized linears (which = BlockLinear index); the other linears keep their weights. W holds all 7
// original weights [out, in]. Consumes the sampler's random stream from `rng`.
struct BlockLayerSpec {
    int which = 0;               // BlockLinear
    std::string name;            // full module name (for QuantizedTensor and messages)
    LayerScheme scheme;
};
// N = the block type's number of linears (kNumBlockLinears for Qwen3 decoder blocks, kNumVisionLinears for
// Qwen3-VL vision blocks).
template <size_t N>
struct BlockTuneResultT {
    std::map<std::string, QuantizedTensor> quantized;      // per layer name
    std::map<std::string, LayerParams> best_params;        // the V, α, β that were exported
    std::array<std::vector<float>, N> qdq;                 // weights of the quantized block (bf16-rounded
                                                           // W_q for tuned layers, originals otherwise)
    std::vector<double> losses;                            // loss of every iteration run
    BlockReport report;
    // Set when the host part of §2.8 was left for later (the GPU tuner with device-resident chains, which computes
    // the chain's QDQ weights on the device): calling it once, on any thread, fills quantized, best_params and the
    // tuned layers' qdq; until then the block's original weights must stay where they were.
    std::function<void(BlockTuneResultT&)> finish;
};
using BlockTuneResult = BlockTuneResultT<kNumBlockLinears>;
using VisionBlockTuneResult = BlockTuneResultT<kNumVisionLinears>;
BlockTuneResult tune_block(Qwen3BlockGrad<float>& block, const std::array<std::vector<float>, kNumBlockLinears>& W,
                           const std::vector<BlockLayerSpec>& layers, const float* train_in, const float* ref_out,
                           int64_t n, int64_t L, const SignRoundOptions& opt, PythonRandom& rng,
                           const std::string& block_name, int block_index = 0);

// Several consecutive blocks tuned jointly (nblocks > 1; one member = tune_block). Each member: its
// block, its 7 original weights and its quantized layers. `train_in` is the first member's input, `ref_out`
// the FP output of the last member, both [n, L, H]. Returns one result per member (its codes, best
// parameters and QDQ weights; the report holds the group's losses, see BlockReport::group). CPU only.
template <typename BlockT, size_t N>
struct BlockGroupMemberT {
    BlockT* block = nullptr;
    const std::array<std::vector<float>, N>* W = nullptr;
    std::vector<BlockLayerSpec> layers;
    std::string name;            // "model.layers.3"
    int index = 0;
};
using BlockGroupMember = BlockGroupMemberT<Qwen3BlockGrad<float>, kNumBlockLinears>;
std::vector<BlockTuneResult> tune_block_group(const std::vector<BlockGroupMember>& members, const float* train_in,
                                              const float* ref_out, int64_t n, int64_t L, const SignRoundOptions& opt,
                                              PythonRandom& rng);
// "model.layers.3" for one member, "model.layers.3-4" for several.
std::string block_group_name(const std::vector<BlockGroupMember>& members);

// One Qwen3-VL vision block (--quant_nontext_module), the same SignRound loop as tune_block: `train_in` and
// `ref_out` are [n, L, H] with L = block.rows_per_sample() (one calibration image per sample). Every row is
// in the loss (set opt.mask_last_token = false: there is no next-token shift in a ViT); CPU only (opt.cuda
// is an error). If qblock_out is not null it receives QBlock(train_in) [n, L, H] and report.final_loss is set.
VisionBlockTuneResult tune_vision_block(VisionBlockGrad<float>& block,
                                        const std::array<std::vector<float>, kNumVisionLinears>& W,
                                        const std::vector<BlockLayerSpec>& layers, const float* train_in,
                                        const float* ref_out, int64_t n, int64_t L, const SignRoundOptions& opt,
                                        PythonRandom& rng, const std::string& block_name, int block_index,
                                        float* qblock_out = nullptr);
// Runs a vision block over all n samples in chunks of `batch` (no gradients): out [n, L, H] (may alias in).
void vision_block_forward_all(VisionBlockGrad<float>& block, const std::array<const float*, kNumVisionLinears>& W,
                              const float* in, int64_t n, int64_t L, int64_t batch, float* out);

// Runs `block` with weights W over all n samples in chunks of `batch` (no gradients): out [n, L, H].
void block_forward_all(Qwen3BlockGrad<float>& block, const std::array<const float*, kNumBlockLinears>& W,
                       const float* in, int64_t n, int64_t L, int64_t batch, float* out);

// Token embeddings of samples [n][L] -> [n, L, H] (float32 from the checkpoint dtype).
std::vector<float> embed_samples(const Qwen3Model& model, const std::vector<std::vector<int32_t>>& samples);

struct QuantizeResult {
    std::map<std::string, QuantizedTensor> layers;  // every quantized layer (blocks + outside)
    std::vector<BlockReport> blocks;                // one per block processed, model order
    std::vector<std::string> warnings;
    std::string method;                             // "signround", "rtn" or "opt-rtn"
    double seconds = 0;
};

// The language model's block-0 inputs, for calibration sets that are not plain token sequences: Qwen3-VL
// image+caption chats (quant/multimodal_calibration.h). Besides the inputs, the blocks then need the
// shared M-RoPE positions, the DeepStack features added after the first layers (on both chains, outside
// the tuned blocks' loss) and a per-sample loss mask (captions of different lengths are right-padded).
struct BlockInputs {
    int64_t n = 0, L = 0;                       // samples, tokens per sample
    std::vector<float> hidden;                  // [n, L, H]: token embeddings, image rows replaced
    std::vector<uint8_t> loss_mask;             // [n, L] 1 = in the loss; empty: opt.mask_last_token's rule
    std::vector<int32_t> mrope_positions;       // [3, L] (rows t, h, w) for every sample; empty: 0..L-1
    std::vector<int> mrope_section;             // the config's rope_scaling.mrope_section (3 entries)
    std::vector<int64_t> visual_rows;           // the image-token rows t of every sample, ascending
    std::vector<std::vector<float>> deepstack;  // [k] -> [n, visual_rows.size(), H]: added to the visual rows
                                                // of every sample after language layer k
};

// The whole model: blocks of `plan` tuned in order (iters > 0), or RTN / optimized RTN (iters == 0);
// layers in plan.outside get RTN. `samples`: tokenized calibration samples, all of the same length
// (may be empty for plain RTN). Throws Error for nblocks < 1, nblocks > 1 with opt.cuda, mismatched sample
// lengths, NaN/Inf losses. nblocks larger than the number of blocks simply makes one group of all of them.
// With a checkpoint (SignRound only), every tuned block is saved to it and blocks it already holds are
// loaded instead of tuned (quant/tuning_checkpoint.h): the result is bit-identical either way. With
// nblocks > 1 every block of a group is saved once the whole group is tuned, and a group is loaded only
// when all its blocks are in the checkpoint (else it is tuned again from the same state).
QuantizeResult quantize_model(const Qwen3Model& model, const QuantPlan& plan,
                              const std::vector<std::vector<int32_t>>& samples, const SignRoundOptions& opt,
                              TuningCheckpoint* checkpoint = nullptr);
// The same on precomputed block-0 inputs (BlockInputs), on the CPU or (opt.cuda) the GPU block engine with the
// same positions and loss mask. A --nblocks group ends at every layer followed by a DeepStack addition (the
// addition sits between two blocks, outside any group).
QuantizeResult quantize_model_from_inputs(const Qwen3Model& model, const QuantPlan& plan, BlockInputs inputs,
                              const SignRoundOptions& opt, TuningCheckpoint* checkpoint = nullptr);

// Whether iters == 0 with these options needs calibration data (optimized RTN for sym int < 8 bits).
bool rtn_needs_calibration(const QuantPlan& plan, const SignRoundOptions& opt);

}  // namespace autoround
