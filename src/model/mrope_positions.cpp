// model/mrope_positions.cpp — see mrope_positions.h.
#include "model/mrope_positions.h"

#include <algorithm>

#include "core/error.h"

namespace autoround {

MropePositions mrope_positions(std::span<const int32_t> tokens, std::span<const ImageGrid> grids,
                               int image_token_id, int spatial_merge) {
    const int64_t T = static_cast<int64_t>(tokens.size());
    check(spatial_merge > 0, "mrope_positions: spatial_merge must be positive, got ", spatial_merge);
    MropePositions r;
    r.positions.assign(3 * T, 0);
    int32_t* pt = r.positions.data();
    int32_t* ph = pt + T;
    int32_t* pw = ph + T;
    int64_t cur = 0;
    size_t image = 0;
    int64_t i = 0;
    while (i < T) {
        if (tokens[i] != image_token_id) {
            pt[i] = ph[i] = pw[i] = static_cast<int32_t>(cur);
            ++cur;
            ++i;
            continue;
        }
        // A run of image-pad tokens: the next image.
        int64_t run = 0;
        while (i + run < T && tokens[i + run] == image_token_id) ++run;
        check(image < grids.size(), "the prompt has more <|image_pad|> runs than images (", grids.size(),
              " given); give one image per image placeholder");
        const ImageGrid& g = grids[image];
        check(g.t == 1, "image ", image + 1, ": a grid with t = ", g.t, " frames; only still images (t = 1) are supported");
        check(g.h > 0 && g.w > 0 && g.h % spatial_merge == 0 && g.w % spatial_merge == 0, "image ", image + 1,
              ": grid ", g.h, "x", g.w, " is not a positive multiple of the spatial merge size ", spatial_merge);
        const int64_t gh = g.h / spatial_merge, gw = g.w / spatial_merge;
        check(run == gh * gw, "image ", image + 1, " needs ", gh * gw, " <|image_pad|> tokens (", gh, "x", gw,
              " merged patches) but the prompt has a run of ", run);
        for (int64_t a = 0; a < gh; ++a)
            for (int64_t b = 0; b < gw; ++b) {
                const int64_t k = i + a * gw + b;
                pt[k] = static_cast<int32_t>(cur);
                ph[k] = static_cast<int32_t>(cur + a);
                pw[k] = static_cast<int32_t>(cur + b);
            }
        cur += std::max(gh, gw);
        i += run;
        ++image;
    }
    check(image == grids.size(), "the prompt has ", image, " <|image_pad|> runs but ", grids.size(),
          " images were given; put one image placeholder per image in the prompt");
    int32_t mx = -1;
    for (int32_t p : r.positions) mx = std::max(mx, p);
    r.rope_delta = static_cast<int64_t>(mx) + 1 - T;
    return r;
}

}  // namespace autoround
