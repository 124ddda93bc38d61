// quant/vision_tuner.h — SignRound on the Qwen3-VL vision tower (--quant_nontext_module): the tower's
// blocks tuned in order on calibration images, exactly like the language blocks (quant/signround_tuner.h)
// but with the ViT block (model/qwen3_vl_vision_block_grad.h) and every patch row in the loss.
//
// Data flow (all float32, [n, L, H] = images × patches per image × vision hidden):
//   fp_in   block 0: patch embedding + position embedding of each image (Qwen3VLVision::embed_patches)
//   per block k: ref_out = FPBlock_k(fp_in); if k is planned, tune on q_in (quantized chain, when
//   enable_quanted_input and k > first tuned block) or fp_in, then q_in ← QBlock_k(train input);
//   unplanned blocks run in full precision on both chains; fp_in ← ref_out.
// The mergers and the patch embedding are never quantized (they are not blocks). iters == 0 gives plain
// RTN codes (V = 0, α = β = 1) for the vision layers; optimized RTN is a language-model feature here.
#pragma once

#include <vector>

#include "io/safetensors.h"
#include "model/qwen3_vl_vision.h"
#include "quant/scheme.h"
#include "quant/signround_tuner.h"
#include "quant/vision_calibration.h"

namespace autoround {

// `tower`: the loaded FP tower (patch embedding and rotary tables; loaded from `store`, which the blocks'
// constants and weights are read from). `blocks`: the plan's vision blocks (PlannedBlock::vision), model order. `opt`: the run's options; the
// tower always runs on the CPU and without the last-token mask. Returns the vision layers' codes and one
// report per tower block (method "fp" for unplanned ones).
QuantizeResult quantize_vision_tower(const TensorStore& store, const Qwen3VLVision& tower,
                                     const std::vector<PlannedBlock>& blocks, const VisionCalibrationSet& cal,
                                     const SignRoundOptions& opt);

}  // namespace autoround
