// tests/quant/test_vision_tuner.cpp — --quant_nontext_module's pieces (quant/vision_calibration.h,
// quant/vision_tuner.h, tune_vision_block in quant/signround_tuner.h):
//  * the image calibration set of ../shared/data/images: every .png/.jpg in name order, one common grid,
//    pixel rows = n·L, captions counted, the processor's min_pixels respected, clear errors for a missing
//    folder, a folder without images, a bad --image_size and an undecodable image;
//  * tune_vision_block on block 0 of qwen3-vl-nano's tower: the SignRound loss falls below the RTN loss of
//    iteration 0, the exported parameters reproduce the best loss, iters 0 gives the RTN codes;
//  * quantize_vision_tower over the whole nano tower (all 4 blocks tuned, and a selection with an FP block).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "model/qwen3_vl_model.h"
#include "model/qwen3_vl_vision_block_grad.h"
#include "quant/signround_tuner.h"
#include "quant/vision_calibration.h"
#include "quant/vision_tuner.h"
#include "quant_test_util.h"

namespace fs = std::filesystem;
using namespace autoround;
using autoround::testquant::expect_error;

namespace {

const fs::path kShared = fs::path(AR_SHARED_DIR);
const fs::path kVl = kShared / "models/qwen3-vl-nano";
const fs::path kImages = kShared / "data/images";

Qwen3VLVisionConfig nano_vision_config() {
    const nlohmann::json j = read_json_file(kVl / "config.json");
    return parse_qwen3_vl_vision_config(j.at("vision_config"), "qwen3-vl-nano config.json");
}

const VisionCalibrationSet& nano_calibration() {
    static const VisionCalibrationSet cal = [] {
        VisionCalibrationOptions o;
        o.dir = kImages;
        o.image_size = 256;
        return build_vision_calibration(o, load_model_image_processor_config(kVl));
    }();
    return cal;
}

// Block 0 of the nano tower with its FP inputs and targets on the calibration images.
struct VisionFixture {
    Qwen3VLVisionConfig cfg = nano_vision_config();
    TensorStore store = TensorStore::open(kVl);
    std::unique_ptr<VisionBlockGrad<float>> block;
    std::array<std::vector<float>, kNumVisionLinears> W;
    std::vector<float> in, ref;
    std::vector<BlockLayerSpec> specs;
    int64_t n = 0, L = 0;

    VisionFixture() {
        const VisionCalibrationSet& cal = nano_calibration();
        n = cal.n;
        L = cal.rows_per_image;
        const Qwen3VLVision tower = Qwen3VLVision::load(store, cfg);
        const std::vector<ImageGrid> grids(static_cast<size_t>(n), cal.grid);
        in = tower.embed_patches(cal.pixel_values, grids);
        std::vector<float> c, s;
        tower.rotary_tables(std::span<const ImageGrid>(&cal.grid, 1), c, s);
        block = std::make_unique<VisionBlockGrad<float>>(load_vision_block_consts(store, cfg, 0), cal.grid, c, s);
        std::array<const float*, kNumVisionLinears> wp{};
        for (int i = 0; i < kNumVisionLinears; ++i) {
            W[i] = load_vision_block_weight(store, cfg, 0, i);
            wp[i] = W[i].data();
            specs.push_back({i, vision_linear_tensor(0, i).substr(0, vision_linear_tensor(0, i).size() - 7),
                             LayerScheme{4, 128, true, "int"}});
        }
        ref.resize(in.size());
        vision_block_forward_all(*block, wp, in.data(), n, L, 2, ref.data());
    }
    SignRoundOptions options(int iters) const {
        SignRoundOptions o;
        o.iters = iters;
        o.batch_size = 2;
        o.mask_last_token = false;
        o.progress = false;
        return o;
    }
};

}  // namespace

TEST(VisionCalibration, ImagesOfTheSharedFolderShareOneGrid) {
    const VisionCalibrationSet& cal = nano_calibration();
    // 000000039769.png, Confusing-Pictures.jpg, merlion.png, phototest.png (the .tif is not read)
    ASSERT_EQ(cal.n, 4);
    EXPECT_EQ(cal.files.front(), "000000039769.png");
    EXPECT_EQ(cal.files.back(), "phototest.png");
    EXPECT_EQ(cal.captions, 1);  // phototest.txt
    EXPECT_EQ(cal.grid.t, 1);
    EXPECT_EQ(cal.grid.h, 16);
    EXPECT_EQ(cal.grid.w, 16);
    EXPECT_EQ(cal.rows_per_image, 256);
    const int64_t patch_dim = 3 * 2 * 16 * 16;
    EXPECT_EQ(static_cast<int64_t>(cal.pixel_values.size()), cal.n * cal.rows_per_image * patch_dim);
    EXPECT_NE(cal.description.find("4 images"), std::string::npos) << cal.description;

    // below min_pixels (65536 = 256²): raised, with a warning
    VisionCalibrationOptions o;
    o.dir = kImages;
    o.image_size = 128;
    o.nsamples = 1;
    const VisionCalibrationSet small = build_vision_calibration(o, load_model_image_processor_config(kVl));
    EXPECT_EQ(small.n, 1);
    EXPECT_EQ(small.rows_per_image, 256);
    ASSERT_EQ(small.warnings.size(), 1u);
    EXPECT_NE(small.warnings[0].find("min_pixels"), std::string::npos);
}

TEST(VisionCalibration, BadFoldersAndSizesAreClearErrors) {
    const ImageProcessorConfig proc = load_model_image_processor_config(kVl);
    VisionCalibrationOptions o;
    o.dir = kShared / "no-such-folder";
    expect_error([&] { build_vision_calibration(o, proc); }, {"--image_dataset", "not a folder"});
    const fs::path tmp = fs::temp_directory_path() / ("ar_vcal_" + std::to_string(::getpid()));
    fs::create_directories(tmp);
    o.dir = tmp;
    expect_error([&] { build_vision_calibration(o, proc); }, {"no .png/.jpg/.jpeg images"});
    std::ofstream(tmp / "broken.png") << "not a png at all";
    expect_error([&] { build_vision_calibration(o, proc); }, {"broken.png"});
    o.dir = kImages;
    o.image_size = 250;
    expect_error([&] { build_vision_calibration(o, proc); }, {"--image_size 250", "multiple of 32"});
    fs::remove_all(tmp);
}

TEST(VisionTuner, SignRoundBeatsRtnOnANanoVisionBlock) {
    VisionFixture f;
    PythonRandom rng(42);
    std::vector<float> qout(f.in.size());
    const VisionBlockTuneResult r =
        tune_vision_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L, f.options(40), rng,
                          "model.visual.blocks.0", 0, qout.data());
    EXPECT_EQ(r.report.iters_run, 40);
    EXPECT_EQ(r.quantized.size(), 4u);
    EXPECT_LT(r.report.best_loss, 0.9 * r.report.initial_loss) << "initial " << r.report.initial_loss;
    EXPECT_GE(r.report.final_loss, 0.0);
    // the exported QDQ weights reproduce the block output the final loss was computed from
    std::array<const float*, kNumVisionLinears> qw{};
    for (int i = 0; i < kNumVisionLinears; ++i) qw[i] = r.qdq[i].data();
    std::vector<float> again(f.in.size());
    vision_block_forward_all(*f.block, qw, f.in.data(), f.n, f.L, 2, again.data());
    EXPECT_EQ(again, qout);

    // iters 0: the RTN codes, whose loss is the initial loss of the run above on the whole set
    PythonRandom rng0(42);
    std::vector<float> rtn_out(f.in.size());
    const VisionBlockTuneResult r0 = tune_vision_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n, f.L,
                                                       f.options(0), rng0, "model.visual.blocks.0", 0, rtn_out.data());
    EXPECT_EQ(r0.report.iters_run, 0);
    EXPECT_GT(r0.report.final_loss, r.report.final_loss);

    // bad input: rows per sample that do not match the block's grid
    PythonRandom rng1(42);
    expect_error([&] {
        tune_vision_block(*f.block, f.W, f.specs, f.in.data(), f.ref.data(), f.n * 2, f.L / 2, f.options(1), rng1,
                          "model.visual.blocks.0", 0);
    }, {"model.visual.blocks.0", "rows per sample"});
}

TEST(VisionTuner, QuantizeVisionTowerTunesThePlannedBlocksInOrder) {
    const TensorStore store = TensorStore::open(kVl);
    const Qwen3VLVisionConfig cfg = nano_vision_config();
    std::vector<PlannedBlock> blocks;
    for (int b : {0, 2, 3}) {  // block 1 stays in full precision
        PlannedBlock pb{"model.visual.blocks." + std::to_string(b), b, {}, true};
        for (int i = 0; i < kNumVisionLinears; ++i) {
            const auto sh = vision_linear_shape(VisionBlockDims{cfg.hidden_size, cfg.num_heads, cfg.intermediate_size}, i);
            pb.layers.push_back({pb.name + "." + vision_linear_name(i), sh[0], sh[1], LayerScheme{4, 128, true, "int"}});
        }
        blocks.push_back(pb);
    }
    SignRoundOptions o;
    o.iters = 3;
    o.batch_size = 2;
    o.progress = false;
    const QuantizeResult r = quantize_vision_tower(store, Qwen3VLVision::load(store, cfg), blocks, nano_calibration(), o);
    ASSERT_EQ(r.blocks.size(), 4u);
    EXPECT_EQ(r.blocks[1].method, "fp");
    for (int b : {0, 2, 3}) {
        EXPECT_EQ(r.blocks[static_cast<size_t>(b)].method, "signround") << b;
        EXPECT_EQ(r.blocks[static_cast<size_t>(b)].iters_run, 3) << b;
        EXPECT_GT(r.blocks[static_cast<size_t>(b)].final_loss, 0.0) << b;
    }
    EXPECT_EQ(r.layers.size(), 12u);
    EXPECT_TRUE(r.layers.count("model.visual.blocks.3.mlp.linear_fc2"));
    EXPECT_FALSE(r.layers.count("model.visual.blocks.1.attn.qkv"));
    const QuantizedTensor& q = r.layers.at("model.visual.blocks.0.attn.qkv");
    EXPECT_EQ(q.out_features, 3 * cfg.hidden_size);
    EXPECT_EQ(q.in_features, cfg.hidden_size);
}
