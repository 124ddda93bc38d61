// model/mrope_positions.h — the 3-D (t, h, w) M-RoPE position ids of a Qwen3-VL prompt: transformers'
// `get_rope_index` for images (qwen3-architecture.md §2.4d).
//
// Why a separate file: the positions depend only on the token ids and the image grids, not on weights, and
// they must equal the reference exactly (`rope.position_ids`, `rope.mrope_position_deltas`), so they are
// computed and tested on their own.
//
// Left to right with a running `cur`: a run of L text tokens gets cur..cur+L−1 on all three axes; an image
// (a run of image_token_id, merged grid gh × gw) gets t = cur, h = cur + i, w = cur + j at merged (i, j) in
// row-major order, then cur += max(gh, gw). rope_delta = max position + 1 − T.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/qwen3_vl_vision.h"

namespace autoround {

struct MropePositions {
    std::vector<int32_t> positions;  // [3, T]: rows t, h, w
    int64_t rope_delta = 0;          // max position + 1 − T
};

// grids: one per image in prompt order, in patches (h, w multiples of spatial_merge). Throws autoround::Error
// when the image-pad runs do not match the grids (count or length).
MropePositions mrope_positions(std::span<const int32_t> tokens, std::span<const ImageGrid> grids,
                               int image_token_id, int spatial_merge);

}  // namespace autoround
