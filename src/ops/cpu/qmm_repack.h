// ops/cpu/qmm_repack.h — the CPU runtime's load-time copy of a Q4_0 / Q4_K / Q6_K weight with 16 rows interleaved
// per block, for the AVX-512 VNNI dots of ops/cpu/quant_matmul.cpp (the one definition of this layout).
//
// Why: the in-place dots (quant_matmul.cpp) spend their instructions per row and block on placing codes (VPERMT2B),
// converting one row's scale, broadcasting sub-block scales and a horizontal sum per row: with fast memory the decode
// is instruction-bound (single op out of cache Q4_0 25–31 GB/s, Q4_K 21–22 against 32–35 for a read sweep). With 16
// rows interleaved, one int32 lane of a 512-bit register is one row: an activation quad is a 32-bit broadcast shared
// by 16 rows, one VCVTPH2PS converts 16 rows' scales, and no horizontal sum is left (the 16 lanes are the 16 outputs).
// Same idea as llama.cpp's Q4_0×8 / Q4_K×8 CPU repacks; the layout here is our own.
//
// Made once at load (Qwen3Model::load_gguf) from the mapped file's blocks, which are never written (the loader then
// drops the pages of the rows held here from the resident set, model/qwen3_model.h); rows [0, rows) with
// rows = out rounded down to 16 are held here, the last out % 16 rows keep the file's blocks and the in-place dots.
// Same bytes as the file's blocks except Q4_0's padding for an odd block count and Q6_K's 32 bytes per block. Groups
// are 64-byte aligned. The weights of a model go into one allocation, 2 MiB aligned with transparent
// huge pages asked for (madvise): on the 2-core VM the decode is measured on, 4 KiB-page copies made the 0.6B Q4_0
// decode slower than the file mapping it replaces (66–72 against 96–103 tok/s, 2 threads; a first read sweep of
// freshly written 4 KiB pages ran at 0.6–8 GB/s, of huge pages at 17), with huge pages faster (91–98 against 81).
//
// Group g holds rows 16g .. 16g+15 (r = row − 16g below), its nb = in / block blocks in order:
//
// Q4_0 (nb = in/32), pairs of blocks (2p, 2p+1), 576 bytes each (9 cache lines), p = 0 .. ceil(nb/2) − 1:
//   [  0,  32) fp16 d[16] of block 2p        (d[r] = the row's block scale)
//   [ 32,  64) fp16 d[16] of block 2p+1      (zero if 2p+1 == nb)
//   [ 64, 320) codes of block 2p, 4 quads q of 64 bytes: bytes 4r..4r+3 of quad q = the row's qs[4q .. 4q+3]
//              (a byte's low nibble is value 4q+k, its high nibble value 16+4q+k, as in the file: no nibble moves)
//   [320, 576) codes of block 2p+1 (absent when 2p+1 == nb: the group ends 256 bytes earlier)
// Q4_K (nb = in/256), 2304 bytes per block (36 lines):
//   [  0,  32) fp16 d[16], [32, 64) fp16 dmin[16]
//   [ 64, 256) the 12 scale bytes of each row as three little-endian u32 words: word k of row r at 64 + 64k + 4r
//   [256, 2304) codes: chunk c (0..3, values 64c .. 64c+63), quad q (0..7) at 256 + 512c + 64q, 64 bytes: bytes
//              4r..4r+3 = the row's qs[32c+4q .. +3] (low nibbles: values 64c+4q+k of sub-block 2c; high nibbles:
//              values 64c+32+4q+k of sub-block 2c+1)
// Q6_K (nb = in/256), 3392 bytes per block (53 lines; the file's 16 × 210 bytes and 32 bytes of padding):
//   [  0,  32) fp16 d[16], [32, 64) zero
//   [ 64, 320) the int8 scales, sub-block j (values 16j .. 16j+15) of row r at 64 + 16j + r (one VPMOVSXBD per j)
//   [320, 3392) codes: step s = 8h + q (h = 0..1 the 128-value half, q = 0..7) at 320 + 192s, three 64-byte vectors
//              whose bytes 4r..4r+3 are the row's qh[32h+4q .. +3], ql[64h+4q .. +3], ql[64h+32+4q .. +3]. Value
//              128h + 32t + 4q + k (t = 0..3) is the low nibble (t < 2) / high nibble (t >= 2) of the second (t even)
//              / third (t odd) vector's byte 4r+k, with bits 2t, 2t+1 of the first vector's byte 4r+k above it
//              (as in the file: no bit moves); one step gives 4 values of each of the sub-blocks 8h+2t+q/4.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "export/gguf_blocks.h"

namespace autoround {

struct WeightView;

constexpr int64_t kRepackRows = 16;

class QmmRepacked {
public:
    gguf::BlockType type;
    int64_t out = 0, in = 0;  // the source weight's shape
    int64_t rows = 0;         // rows held here: out rounded down to kRepackRows
    int64_t nb = 0;           // blocks per row
    int64_t group_bytes = 0;  // bytes per group of kRepackRows rows (a multiple of 64)

    // The shape and sizes only: qmm_repack_all places and fills the bytes.
    QmmRepacked(gguf::BlockType t, int64_t out, int64_t in);
    int64_t groups() const { return rows / kRepackRows; }
    int64_t bytes() const { return groups() * group_bytes; }
    uint8_t* group(int64_t g) { return data_ + g * group_bytes; }
    const uint8_t* group(int64_t g) const { return data_ + g * group_bytes; }

private:
    friend std::vector<std::shared_ptr<const QmmRepacked>> qmm_repack_all(std::span<const WeightView* const> ws);
    std::shared_ptr<uint8_t> arena_;  // the allocation holding data_ (shared by the weights repacked together)
    uint8_t* data_ = nullptr;
};

// Byte offsets inside a group (see the layout above).
inline int64_t q4_0r_scales(int64_t b) { return (b / 2) * 576 + (b % 2) * 32; }
inline int64_t q4_0r_codes(int64_t b) { return (b / 2) * 576 + 64 + (b % 2) * 256; }
constexpr int64_t kQ4KrBlockBytes = 2304;
constexpr int64_t kQ6KrBlockBytes = 3392;
inline int64_t q6_kr_step(int64_t h, int64_t q) { return 320 + 192 * (8 * h + q); }

// Whether t has a repacked layout (Q4_0, Q4_K, Q6_K).
bool qmm_repack_supported(gguf::BlockType t);
// The repacked copies of the packed weights ws, in order: null for a weight whose type has no repacked layout or that
// has fewer than 16 rows. All in one allocation (huge pages asked for), filled by the OpenMP threads.
std::vector<std::shared_ptr<const QmmRepacked>> qmm_repack_all(std::span<const WeightView* const> ws);
// One weight: qmm_repack_all({&w})[0].
std::shared_ptr<const QmmRepacked> qmm_repack(const WeightView& w);
// Row `row` (< r.rows) back as the file's blocks (row_bytes bytes): for tests.
void qmm_repack_unpack_row(const QmmRepacked& r, int64_t row, uint8_t* blocks);
// Row `row` (< r.rows) dequantized to float32 straight from the repacked bytes (scalar; the format's reference).
void qmm_repack_dequantize_row(const QmmRepacked& r, int64_t row, float* dst);

}  // namespace autoround
