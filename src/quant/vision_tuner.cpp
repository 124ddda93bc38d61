// quant/vision_tuner.cpp — see vision_tuner.h.
#include "quant/vision_tuner.h"

#include <chrono>
#include <map>

#include "core/error.h"
#include "model/qwen3_vl_vision_block_grad.h"

namespace autoround {

QuantizeResult quantize_vision_tower(const TensorStore& store, const Qwen3VLVision& tower,
                                     const std::vector<PlannedBlock>& blocks, const VisionCalibrationSet& cal,
                                     const SignRoundOptions& opt_in) {
    const Qwen3VLVisionConfig& cfg = tower.config();
    const auto t0 = std::chrono::steady_clock::now();
    QuantizeResult res;
    res.method = opt_in.iters > 0 ? "signround" : "rtn";
    if (blocks.empty()) return res;
    check(cal.n > 0 && cal.rows_per_image > 0, "--quant_nontext_module: no calibration images");
    SignRoundOptions opt = opt_in;
    opt.mask_last_token = false;  // a ViT has no next-token shift: every patch row counts
    opt.cuda = false;
    opt.nblocks = 1;
    opt.batch_size = static_cast<int>(std::min<int64_t>(opt.batch_size, cal.n));
    std::map<int, const PlannedBlock*> planned;
    for (const PlannedBlock& b : blocks) {
        check(b.vision, "quantize_vision_tower: ", b.name, " is not a vision block");
        check(b.index >= 0 && b.index < cfg.depth, "quantize_vision_tower: ", b.name, " is outside the tower's ",
              cfg.depth, " blocks");
        planned[b.index] = &b;
    }

    const int64_t n = cal.n, L = cal.rows_per_image, H = cfg.hidden_size;
    const std::vector<ImageGrid> grids(static_cast<size_t>(n), cal.grid);
    std::vector<float> fp_in = tower.embed_patches(cal.pixel_values, grids);  // [n, L, H]
    check(static_cast<int64_t>(fp_in.size()) == n * L * H, "vision calibration: embed_patches returned ",
          fp_in.size(), " values, expected ", n * L * H);
    std::vector<float> rope_cos, rope_sin;
    tower.rotary_tables(std::span<const ImageGrid>(&cal.grid, 1), rope_cos, rope_sin);  // [L, D/2]

    std::vector<float> ref(fp_in.size()), q_in, q_out;
    PythonRandom rng(opt.seed);
    const int first_tuned = planned.begin()->first;
    for (int k = 0; k < cfg.depth; ++k) {
        const auto tb = std::chrono::steady_clock::now();
        VisionBlockGrad<float> blk(load_vision_block_consts(store, cfg, k), cal.grid, rope_cos, rope_sin);
        std::array<std::vector<float>, kNumVisionLinears> W;
        std::array<const float*, kNumVisionLinears> wp{};
        for (int i = 0; i < kNumVisionLinears; ++i) {
            W[i] = load_vision_block_weight(store, cfg, k, i);
            wp[i] = W[i].data();
        }
        vision_block_forward_all(blk, wp, fp_in.data(), n, L, opt.batch_size, ref.data());
        const std::string name = "model.visual.blocks." + std::to_string(k);
        const auto it = planned.find(k);
        if (it == planned.end()) {  // not selected: full precision on both chains
            if (!q_in.empty()) vision_block_forward_all(blk, wp, q_in.data(), n, L, opt.batch_size, q_in.data());
            BlockReport r;
            r.name = name;
            r.index = k;
            r.method = "fp";
            r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
            res.blocks.push_back(r);
        } else {
            std::vector<BlockLayerSpec> specs;
            for (const PlannedLayer& l : it->second->layers) {
                int which = -1;
                for (int i = 0; i < kNumVisionLinears; ++i)
                    if (l.name == name + "." + vision_linear_name(i)) which = i;
                check(which >= 0, "layer ", l.name, " is not one of the vision block's 4 linears");
                specs.push_back({which, l.name, l.scheme});
            }
            const bool use_q = opt.enable_quanted_input && k > first_tuned && !q_in.empty();
            const float* train = use_q ? q_in.data() : fp_in.data();
            q_out.resize(fp_in.size());
            VisionBlockTuneResult tr =
                tune_vision_block(blk, W, specs, train, ref.data(), n, L, opt, rng, name, k, q_out.data());
            for (auto& [lname, q] : tr.quantized) res.layers.emplace(lname, std::move(q));
            tr.report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
            res.blocks.push_back(tr.report);
            q_in.swap(q_out);
        }
        fp_in.swap(ref);
    }
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace autoround
