// quant/tuning_checkpoint.h — resumable AutoRound runs: after each tuned block, its result is saved to a
// checkpoint folder; a run killed at any moment (kill -9 included) and restarted with the same command
// reloads the finished blocks instead of tuning them again, and ends with output bit-identical to an
// uninterrupted run.
//
// Why this design: the state needed to continue after block k is small if it is rebuilt rather than
// stored. The cached activations (nsamples × seqlen × hidden per chain: 10 GB for Qwen3-4B's seed run) are
// NOT saved; on resume both chains are recomputed with forward passes only (the FP chain with the
// original weights, the quantized chain with the block's saved QDQ weights) — the same code with the same
// chunking as the first run, so the activations are bit-identical. What is saved per block:
//   block-NNNN.safetensors  for every tuned layer L: L.codes U8 [out, in], L.scales F32 [out, G],
//                           L.zeros I32 [out, G] (when present), L.float_zeros F32 (when present),
//                           L.qdq BF16 [out, in] (the QDQ weights the quantized chain ran with — exactly
//                           bf16, so lossless)
//   block-NNNN.json         written last (tmp + rename): the block's report, the layers' schemes and the
//                           state of the mini-batch sampler's CPython generator after the block.
// With --nblocks > 1 the blocks of a group are saved (one file pair each, as above, the sampler state
// being the one after the group) only once the whole group is tuned; on resume a group is loaded only if
// all its blocks are finished, otherwise it is tuned again from the saved state before it.
// A block counts as finished only when its JSON exists. `fingerprint.json` holds a hash of everything
// that determines the result (model, plan, options, calibration tokens); a checkpoint with another
// fingerprint is never resumed from.
//
// Where: <model folder>.resume next to the output folder (see cli/cmd_quantize.cpp); removed after a
// successful export.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quant/python_random.h"
#include "quant/signround_tuner.h"

namespace autoround {

// 16 hex digits: FNV-1a 64 over a canonical description of the run (model identity string, plan, the
// options that change results, and every calibration token).
std::string tuning_fingerprint(const std::string& model_identity, const QuantPlan& plan,
                               const std::vector<std::vector<int32_t>>& samples, const SignRoundOptions& opt);

class TuningCheckpoint {
public:
    // Opens (creating if needed) the folder. If it holds a checkpoint with another fingerprint: with
    // `discard_other` it is deleted and a fresh one started (a note on stderr), else Error naming the folder
    // and the choices (same command, --overwrite, or delete it).
    TuningCheckpoint(std::filesystem::path dir, std::string fingerprint, bool discard_other);

    const std::filesystem::path& dir() const { return dir_; }
    // Block indices whose JSON exists (finished), ascending.
    const std::vector<int>& finished() const { return finished_; }
    bool has(int block_index) const;

    struct Block {
        BlockReport report;
        std::map<std::string, QuantizedTensor> quantized;      // per layer name
        std::map<std::string, std::vector<float>> qdq;         // per layer name, [out, in]
        PythonRandom::State rng;                               // after the block
    };
    void save(int block_index, const BlockTuneResult& r, const std::vector<BlockLayerSpec>& layers,
              const PythonRandom& rng);
    Block load(int block_index) const;  // Error naming the file when missing or corrupt

    // Deletes the folder (after the outputs are safely written).
    void remove();

private:
    std::filesystem::path dir_;
    std::string fingerprint_;
    std::vector<int> finished_;
    // has / save from two threads (the GPU tuner saves a finished block on another thread while the next one starts)
    std::shared_ptr<std::mutex> lock_ = std::make_shared<std::mutex>();
};

}  // namespace autoround
