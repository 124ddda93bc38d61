// quant/multimodal_calibration.h — the language blocks' calibration set for --quant_nontext_module on a
// Qwen3-VL model: each calibration image with its caption as a chat, run through the full-precision
// vision tower, as the reference's MLLM path calibrates on image+text conversations
// (autoround-algorithm.md §4: quant_nontext_module forces an image dataset for the whole model).
//
// Sample i (quant/vision_calibration.h gives the images, all on one patch grid, and their captions):
//   chat = user [image, prompt] + assistant caption_i   (no caption: user turn + generation prompt)
//   ids  = tokenize(chat template), the one <|image_pad|> expanded to the image's n_visual tokens, cut to
//          seqlen, right-padded to the longest sample L
//   hidden[i] = token embeddings with the visual rows replaced by the merger's image embeddings   [L, H]
//   deepstack[k][i] = DeepStack feature k of the image (added after language layer k)           [n_visual, H]
//   loss_mask[i, t] = t < length_i (padding is out of the loss; the reference's VLM path has no
//                     last-token mask)
// Every sample has the same prompt prefix and the same grid, so the visual rows and the M-RoPE positions
// ([3, L], model/mrope_positions.h) are shared; the padded tail continues the text positions, which only
// padded rows (masked, and never attended to by real tokens under the causal mask) see.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/signround_tuner.h"
#include "quant/vision_calibration.h"

namespace autoround {

class BpeTokenizer;
class Qwen3VLModel;
struct TokenizerConfig;

struct MultimodalCalibrationOptions {
    int seqlen = 512;                            // longest sample in tokens (captions are cut to fit)
    std::string prompt = "Describe this image.";  // the user turn's text after the image
};

struct MultimodalCalibration {
    BlockInputs inputs;                       // the language model's block-0 inputs (quant/signround_tuner.h)
    std::vector<std::vector<int32_t>> ids;    // [n][L] token ids (padding: the pad token)
    std::vector<int64_t> lengths;             // real tokens of each sample
    std::string description;                  // one line for logs and the quantize report
    std::vector<std::string> warnings;
};

// Errors: the model has no chat template, image pad token or M-RoPE section; the prompt with its image does
// not fit in seqlen (names --seqlen and --image_size); the calibration set is empty.
MultimodalCalibration build_multimodal_calibration(const Qwen3VLModel& model, const VisionCalibrationSet& cal,
                                                   const BpeTokenizer& tok, const TokenizerConfig& tcfg,
                                                   const MultimodalCalibrationOptions& options);

}  // namespace autoround
