// ops/cpu/qmm_repack.cpp — see qmm_repack.h.
#include "ops/cpu/qmm_repack.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <type_traits>

#include <sys/mman.h>

#include "core/error.h"
#include "ops/weight_view.h"

namespace autoround {

using gguf::BlockType;

QmmRepacked::QmmRepacked(BlockType t, int64_t out_, int64_t in_) : type(t), out(out_), in(in_) {
    check(qmm_repack_supported(t), "qmm_repack: ", gguf::block_type_name(t), " has no repacked layout");
    check(in > 0 && in % gguf::block_elems(t) == 0, "qmm_repack: rows of ", in, " values are not whole ",
          gguf::block_type_name(t), " blocks");
    rows = out / kRepackRows * kRepackRows;
    nb = in / gguf::block_elems(t);
    group_bytes = t == BlockType::Q4_0   ? (nb / 2) * 576 + (nb % 2) * 320
                  : t == BlockType::Q4_K ? nb * kQ4KrBlockBytes
                                         : nb * kQ6KrBlockBytes;
}

bool qmm_repack_supported(BlockType t) {
    return t == BlockType::Q4_0 || t == BlockType::Q4_K || t == BlockType::Q6_K;
}

namespace {

// Copies row r of group g between the file's blocks (`blocks`, one row) and the group: to the group if `in`,
// back to the blocks otherwise. The one place that spells the layout out byte by byte.
// The file side is read-only when kIn (a mapping is never written).
template <bool kIn>
void move_row(const QmmRepacked& R, std::conditional_t<kIn, uint8_t*, const uint8_t*> grp, int64_t r,
              std::conditional_t<kIn, const uint8_t*, uint8_t*> blocks) {
    using Group = decltype(grp);
    using File = decltype(blocks);
    auto mv = [](Group repacked, File file, size_t n) {
        if constexpr (kIn) std::memcpy(repacked, file, n);
        else std::memcpy(file, repacked, n);
    };
    using Q40 = std::conditional_t<kIn, const gguf::BlockQ4_0, gguf::BlockQ4_0>;
    using Q4K = std::conditional_t<kIn, const gguf::BlockQ4_K, gguf::BlockQ4_K>;
    using Q6K = std::conditional_t<kIn, const gguf::BlockQ6_K, gguf::BlockQ6_K>;
    for (int64_t b = 0; b < R.nb; ++b) {
        if (R.type == BlockType::Q4_0) {
            Q40* f = reinterpret_cast<Q40*>(blocks) + b;
            mv(grp + q4_0r_scales(b) + 2 * r, reinterpret_cast<File>(&f->d), 2);
            for (int q = 0; q < 4; ++q) mv(grp + q4_0r_codes(b) + 64 * q + 4 * r, f->qs + 4 * q, 4);
        } else if (R.type == BlockType::Q6_K) {
            Q6K* f = reinterpret_cast<Q6K*>(blocks) + b;
            Group blk = grp + b * kQ6KrBlockBytes;
            mv(blk + 2 * r, reinterpret_cast<File>(&f->d), 2);
            for (int j = 0; j < 16; ++j) mv(blk + 64 + 16 * j + r, reinterpret_cast<File>(f->scales + j), 1);
            for (int h = 0; h < 2; ++h)
                for (int q = 0; q < 8; ++q) {
                    Group s = blk + q6_kr_step(h, q) + 4 * r;
                    mv(s, f->qh + 32 * h + 4 * q, 4);
                    mv(s + 64, f->ql + 64 * h + 4 * q, 4);
                    mv(s + 128, f->ql + 64 * h + 32 + 4 * q, 4);
                }
        } else {
            Q4K* f = reinterpret_cast<Q4K*>(blocks) + b;
            Group blk = grp + b * kQ4KrBlockBytes;
            mv(blk + 2 * r, reinterpret_cast<File>(&f->d), 2);
            mv(blk + 32 + 2 * r, reinterpret_cast<File>(&f->dmin), 2);
            for (int k = 0; k < 3; ++k) mv(blk + 64 + 64 * k + 4 * r, f->scales + 4 * k, 4);
            for (int c = 0; c < 4; ++c)
                for (int q = 0; q < 8; ++q) mv(blk + 256 + 512 * c + 64 * q + 4 * r, f->qs + 32 * c + 4 * q, 4);
        }
    }
}

}  // namespace

std::vector<std::shared_ptr<const QmmRepacked>> qmm_repack_all(std::span<const WeightView* const> ws) {
    std::vector<std::shared_ptr<QmmRepacked>> rs(ws.size());
    int64_t total = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
        const WeightView& w = *ws[i];
        check(w.packed(), "qmm_repack: weight is not packed");
        if (!qmm_repack_supported(*w.block) || w.out < kRepackRows) continue;
        rs[i] = std::make_shared<QmmRepacked>(*w.block, w.out, w.in);
        total += rs[i]->bytes();  // a multiple of 64
    }
    std::vector<std::shared_ptr<const QmmRepacked>> out(rs.begin(), rs.end());
    if (total == 0) return out;
    constexpr size_t kHuge = size_t(1) << 21;
    const size_t bytes = (static_cast<size_t>(total) + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, bytes);
    check(p != nullptr, "qmm_repack: cannot allocate ", bytes, " bytes for the repacked weights");
    std::shared_ptr<uint8_t> arena(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);  // a request: without transparent huge pages the copies still work
#endif
    std::memset(p, 0, bytes);  // (Q4_0's padding stays zero)
    int64_t at = 0;
    for (const std::shared_ptr<QmmRepacked>& r : rs)
        if (r) {
            r->arena_ = arena;
            r->data_ = arena.get() + at;
            at += r->bytes();
        }
    for (size_t i = 0; i < ws.size(); ++i) {
        if (!rs[i]) continue;
        QmmRepacked& R = *rs[i];
        const WeightView& w = *ws[i];
#pragma omp parallel for schedule(static)
        for (int64_t g = 0; g < R.groups(); ++g)
            for (int64_t k = 0; k < kRepackRows; ++k) move_row<true>(R, R.group(g), k, w.packed_row(g * kRepackRows + k));
    }
    return out;
}

std::shared_ptr<const QmmRepacked> qmm_repack(const WeightView& w) {
    const WeightView* one[1] = {&w};
    return qmm_repack_all(one)[0];
}

void qmm_repack_unpack_row(const QmmRepacked& r, int64_t row, uint8_t* blocks) {
    check(0 <= row && row < r.rows, "qmm_repack_unpack_row: row ", row, " of ", r.rows, " repacked rows");
    move_row<false>(r, r.group(row / kRepackRows), row % kRepackRows, blocks);
}

void qmm_repack_dequantize_row(const QmmRepacked& R, int64_t row, float* dst) {
    check(0 <= row && row < R.rows, "qmm_repack_dequantize_row: row ", row, " of ", R.rows, " repacked rows");
    const uint8_t* grp = R.group(row / kRepackRows);
    const int64_t r = row % kRepackRows;
    auto f16 = [](const uint8_t* p) {
        uint16_t h;
        std::memcpy(&h, p, 2);
        return gguf::fp16_to_f32(h);
    };
    for (int64_t b = 0; b < R.nb; ++b) {
        if (R.type == BlockType::Q4_0) {
            const float d = f16(grp + q4_0r_scales(b) + 2 * r);
            for (int j = 0; j < 32; ++j) {
                const int q = (j % 16) / 4, k = j % 4;
                const uint8_t byte = grp[q4_0r_codes(b) + 64 * q + 4 * r + k];
                dst[32 * b + j] = d * static_cast<float>((j < 16 ? byte & 0xF : byte >> 4) - 8);
            }
        } else if (R.type == BlockType::Q6_K) {
            const uint8_t* blk = grp + b * kQ6KrBlockBytes;
            const float d = f16(blk + 2 * r);
            for (int e = 0; e < 256; ++e) {
                const int h = e / 128, t = e % 128 / 32, q = e % 32 / 4, k = e % 4;
                const uint8_t* s = blk + q6_kr_step(h, q) + 4 * r + k;
                const uint8_t l = s[t % 2 ? 128 : 64];
                const int code = (t < 2 ? l & 0xF : l >> 4) | ((s[0] >> (2 * t)) & 3) << 4;
                const auto sc = static_cast<int8_t>(blk[64 + 16 * (e / 16) + r]);
                // the same float operations as gguf::dequant_q6_k
                dst[256 * b + e] = d * static_cast<float>(sc) * static_cast<float>(code - 32);
            }
        } else {
            const uint8_t* blk = grp + b * kQ4KrBlockBytes;
            const float d = f16(blk + 2 * r), dmin = f16(blk + 32 + 2 * r);
            uint8_t s[12];
            for (int k = 0; k < 3; ++k) std::memcpy(s + 4 * k, blk + 64 + 64 * k + 4 * r, 4);
            for (int e = 0; e < 256; ++e) {
                const int c = e / 64, v = e % 64, q = (v % 32) / 4, k = v % 4, j = e / 32;
                const uint8_t byte = blk[256 + 512 * c + 64 * q + 4 * r + k];
                uint8_t sc, mn;
                gguf::q4k_get_scale_min(j, s, sc, mn);
                // the same float operations as gguf::dequant_q4_k
                const float d1 = d * sc, m1 = dmin * mn;
                dst[256 * b + e] = d1 * static_cast<float>(v < 32 ? byte & 0xF : byte >> 4) - m1;
            }
        }
    }
}

}  // namespace autoround
