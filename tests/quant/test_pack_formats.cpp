// tests/quant/test_pack_formats.cpp — the packed weight formats (export/pack.h,
// quant/quantized_tensor.h): golden bit patterns computed by hand from docs/checkpoint-formats.md,
// pack/unpack and to_*/from_* round trips for every width and format on awkward shapes, error
// messages, a trip through the safetensors writer/reader, and the real checkpoints written by Intel's
// Python AutoRound for qwen3-nano (GPTQ and AWQ exports of one run must hold identical models and
// re-pack byte for byte; the native auto_round checkpoint must dequantize close to the bf16 weights).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "export/pack.h"
#include "io/safetensors.h"
#include "quant/quant_test_util.h"
#include "quant/quantized_tensor.h"

using namespace autoround;
using autoround::testquant::expect_error;
using autoround::testquant::f16_bytes;
using autoround::testquant::i32_bytes;
using autoround::testquant::random_qt;
using autoround::testquant::words_of;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kPeer = kShared / "reference/peer-autoround";

int32_t i32(uint32_t u) { return static_cast<int32_t>(u); }

// codes [out, in] from a function of (n, k)
template <typename F>
std::vector<uint8_t> make_codes(int64_t out, int64_t in, F f) {
    std::vector<uint8_t> c(out * in);
    for (int64_t n = 0; n < out; ++n)
        for (int64_t k = 0; k < in; ++k) c[n * in + k] = static_cast<uint8_t>(f(n, k));
    return c;
}

void expect_same_qt(const QuantizedTensor& a, const QuantizedTensor& b) {
    EXPECT_EQ(a.bits, b.bits);
    EXPECT_EQ(a.group_size, b.group_size);
    EXPECT_EQ(a.sym, b.sym);
    EXPECT_EQ(a.out_features, b.out_features);
    EXPECT_EQ(a.in_features, b.in_features);
    EXPECT_TRUE(a.codes == b.codes);
    EXPECT_TRUE(a.zeros == b.zeros);
    ASSERT_EQ(a.scales.size(), b.scales.size());
    EXPECT_EQ(std::memcmp(a.scales.data(), b.scales.data(), a.scales.size() * 4), 0);
}

}  // namespace

// ---- golden bit patterns (docs §1.2, §1.3, §2.2) ------------------------------------------------------

TEST(PackGolden, GptqWordsFromTheSpec) {
    // one output column, consecutive input rows
    auto one_col = [](std::vector<uint8_t> codes, int bits) {
        return pack::gptq_pack_qweight(codes, 1, static_cast<int64_t>(codes.size()), bits);
    };
    EXPECT_EQ(one_col({0, 1, 2, 3, 4, 5, 6, 7}, 4), (std::vector<int32_t>{1985229328}));       // 0x76543210
    EXPECT_EQ(one_col({8, 9, 10, 11, 12, 13, 14, 15}, 4), (std::vector<int32_t>{-19088744}));  // 0xFEDCBA98
    std::vector<uint8_t> two(16);
    for (int i = 0; i < 16; ++i) two[i] = i % 4;
    EXPECT_EQ(one_col(two, 2), (std::vector<int32_t>{-454761244}));                             // 0xE4E4E4E4
    EXPECT_EQ(one_col({0, 1, 2, 3}, 8), (std::vector<int32_t>{50462976}));                      // 0x03020100
    std::vector<uint8_t> three(32);
    for (int i = 0; i < 32; ++i) three[i] = i % 8;
    EXPECT_EQ(one_col(three, 3), (std::vector<int32_t>{-1996831096, -964101434, -87652102}));  // 88FAC688 C688FAC6 FAC688FA
}

TEST(PackGolden, Gptq3BitStraddlingCodes) {
    // Only code 10 set to 7 (bits 0-1 -> A bits 30-31, bit 2 -> B bit 0), then only code 21 set to 7
    // (bit 0 -> B bit 31, bits 1-2 -> C bits 0-1), then code 31 = 5 -> C bits 29..31 = 101.
    std::vector<uint8_t> v(32, 0);
    v[10] = 7;
    EXPECT_EQ(pack::gptq_pack_qweight(v, 1, 32, 3), (std::vector<int32_t>{i32(0xC0000000u), 1, 0}));
    v[10] = 0;
    v[21] = 7;
    EXPECT_EQ(pack::gptq_pack_qweight(v, 1, 32, 3), (std::vector<int32_t>{0, i32(0x80000000u), 3}));
    v[21] = 0;
    v[31] = 5;
    EXPECT_EQ(pack::gptq_pack_qweight(v, 1, 32, 3), (std::vector<int32_t>{0, 0, i32(0xA0000000u)}));
    v[31] = 0;
    v[11] = 1;  // B bits 1..3
    v[22] = 1;  // C bits 2..4
    EXPECT_EQ(pack::gptq_pack_qweight(v, 1, 32, 3), (std::vector<int32_t>{0, 2, 4}));
}

TEST(PackGolden, GptqTinyMatrixTransposes) {
    // codes[n][k] = (n + k) % 16, out = 8, in = 16, 4-bit -> qweight [2, 8]; column n, row r holds
    // inputs 8r..8r+7 of output n, lowest input in the lowest nibble.
    const auto codes = make_codes(8, 16, [](int64_t n, int64_t k) { return (n + k) % 16; });
    const auto w = pack::gptq_pack_qweight(codes, 8, 16, 4);
    const std::vector<int32_t> want = {
        i32(0x76543210u), i32(0x87654321u), i32(0x98765432u), i32(0xA9876543u),  // row 0, n = 0..3
        i32(0xBA987654u), i32(0xCBA98765u), i32(0xDCBA9876u), i32(0xEDCBA987u),  // row 0, n = 4..7
        i32(0xFEDCBA98u), i32(0x0FEDCBA9u), i32(0x10FEDCBAu), i32(0x210FEDCBu),  // row 1
        i32(0x3210FEDCu), i32(0x43210FEDu), i32(0x543210FEu), i32(0x6543210Fu)};
    EXPECT_EQ(w, want);
    EXPECT_EQ(pack::gptq_unpack_qweight(w, 8, 16, 4), codes);
}

TEST(PackGolden, AwqInterleave) {
    EXPECT_EQ(pack::awq_slot_of_column(0), 0);
    const int pos[8] = {0, 4, 1, 5, 2, 6, 3, 7}, order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (int j = 0; j < 8; ++j) {
        EXPECT_EQ(pack::awq_slot_of_column(j), pos[j]);
        EXPECT_EQ(pack::awq_column_of_slot(j), order[j]);
    }
    // codes[n][k] = (n + k) % 16, out = 8, in = 2 -> qweight [2, 1]
    const auto codes = make_codes(8, 2, [](int64_t n, int64_t k) { return (n + k) % 16; });
    const auto w = pack::awq_pack_qweight(codes, 8, 2);
    // k = 0: columns 0..7 hold 0..7 -> slots hold 0,2,4,6,1,3,5,7 -> 0x75316420 (spec example)
    // k = 1: columns hold 1..8 -> slots hold 1,3,5,7,2,4,6,8 -> 0x86427531
    EXPECT_EQ(w, (std::vector<int32_t>{1966171168, i32(0x86427531u)}));
    EXPECT_EQ(pack::awq_unpack_qweight(w, 8, 2), codes);
    const auto hi = make_codes(8, 1, [](int64_t n, int64_t) { return 8 + n; });
    EXPECT_EQ(pack::awq_pack_qweight(hi, 8, 1), (std::vector<int32_t>{-38146904}));  // 0xFDB9ECA8
}

TEST(PackGolden, SymmetricZeroWords) {
    // docs §1.4 table: v1 stores z - 1, v2 stores z; z = 2^(bits-1). out = 32 so every width packs.
    struct Row {
        int bits;
        std::vector<uint32_t> v1, v2;
    };
    const Row rows[] = {
        {2, {0x55555555u}, {0xAAAAAAAAu}},
        {3, {0xDB6DB6DBu, 0xB6DB6DB6u, 0x6DB6DB6Du}, {0x24924924u, 0x49249249u, 0x92492492u}},
        {4, {0x77777777u}, {0x88888888u}},
        {8, {0x7F7F7F7Fu}, {0x80808080u}},
    };
    for (const auto& r : rows) {
        const QuantizedTensor q = random_qt(r.bits, 32, true, 32, 64, 7);
        for (int v = 1; v <= 2; ++v) {
            const PackedLinear p = to_gptq(q, {v == 1 ? GptqZeros::V1 : GptqZeros::V2, true, DType::F16});
            const auto& want = v == 1 ? r.v1 : r.v2;
            const auto words = words_of(p.get("qzeros"));
            ASSERT_EQ(p.get("qzeros").shape, (std::vector<int64_t>{2, 32 * r.bits / 32}));
            for (size_t i = 0; i < words.size(); ++i)
                EXPECT_EQ(static_cast<uint32_t>(words[i]), want[i % want.size()]) << "bits " << r.bits << " v" << v;
        }
    }
    const QuantizedTensor q4 = random_qt(4, 32, true, 16, 64, 8);
    for (int32_t w : words_of(to_awq(q4).get("qzeros"))) EXPECT_EQ(w, -2004318072);  // 0x88888888, no offset
}

TEST(PackGolden, DequantExamplesFromSpec) {
    // docs §1.5, 4-bit v1: sym, scale 0.25 (fp16 0x3400), code 3, stored zero field 7 -> z = 8 -> -1.25.
    // asym, field 4 -> z = 5, code 12, scale 0.5 -> 3.5. One group (group_size -1), out = in = 8.
    auto build = [](uint8_t code, uint8_t field, uint16_t scale_bits) {
        PackedLinear p;
        std::vector<uint8_t> codes(64, code), fields(8, field);
        p.tensors.push_back({"qweight", DType::I32, {1, 8}, i32_bytes(pack::gptq_pack_qweight(codes, 8, 8, 4))});
        p.tensors.push_back({"qzeros", DType::I32, {1, 1}, i32_bytes(pack::gptq_pack_qzeros(fields, 8, 1, 4))});
        std::vector<uint8_t> sb(16);
        for (int i = 0; i < 8; ++i) std::memcpy(sb.data() + 2 * i, &scale_bits, 2);
        p.tensors.push_back({"scales", DType::F16, {1, 8}, sb});
        return p;
    };
    const PackedLinear sym = build(3, 7, 0x3400);
    EXPECT_EQ(words_of(sym.get("qzeros"))[0], 2004318071);  // 0x77777777
    const QuantizedTensor qs = from_gptq(sym.infos("l"), "l", {4, -1, true}, GptqZeros::V1);
    EXPECT_EQ(qs.zeros[0], 8);
    for (float w : qs.dequantize()) EXPECT_EQ(w, -1.25f);

    const PackedLinear asym = build(12, 4, 0x3800);  // 0.5
    const QuantizedTensor qa = from_gptq(asym.infos("l"), "l", {4, -1, false}, GptqZeros::V1);
    EXPECT_EQ(qa.zeros[0], 5);
    for (float w : qa.dequantize()) EXPECT_EQ(w, 3.5f);
    // the same words read as gptq_v2 mean z = 4
    EXPECT_EQ(from_gptq(asym.infos("l"), "l", {4, -1, false}, GptqZeros::V2).zeros[0], 4);
    // a "sym" config whose zeros are not 8 is refused (Marlin would ignore them)
    expect_error([&] { from_gptq(asym.infos("l"), "l", {4, -1, true}, GptqZeros::V1); }, {"l [8, 8]", "sym", "zero point 5"});
}

// ---- round trips ----------------------------------------------------------------------------------------

TEST(PackRoundTrip, GptqQweightAllWidthsAwkwardShapes) {
    std::mt19937 rng(1);
    for (int bits : {2, 3, 4, 8})
        for (int64_t out : {8, 40, 1})
            for (int64_t in : {96, 160, 4096}) {
                std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
                const auto codes = make_codes(out, in, [&](int64_t, int64_t) { return d(rng); });
                const auto w = pack::gptq_pack_qweight(codes, out, in, bits);
                ASSERT_EQ(static_cast<int64_t>(w.size()), in * bits / 32 * out);
                EXPECT_EQ(pack::gptq_unpack_qweight(w, out, in, bits), codes) << bits << " " << out << " " << in;
                // the device-side helper reads the same code anywhere
                const auto* u = reinterpret_cast<const uint32_t*>(w.data());
                for (int t = 0; t < 50; ++t) {
                    const int64_t n = rng() % out, k = rng() % in;
                    ASSERT_EQ(pack::gptq_get(u + n, out, k, bits), codes[n * in + k]);
                }
            }
}

TEST(PackRoundTrip, GptqQzerosAndAwqAllShapes) {
    std::mt19937 rng(2);
    for (int bits : {2, 3, 4, 8})
        for (int64_t out : {32, 96, 160})
            for (int64_t ng : {1, 3, 32}) {
                std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
                const auto f = make_codes(out, ng, [&](int64_t, int64_t) { return d(rng); });
                const auto w = pack::gptq_pack_qzeros(f, out, ng, bits);
                ASSERT_EQ(static_cast<int64_t>(w.size()), ng * out * bits / 32);
                EXPECT_EQ(pack::gptq_unpack_qzeros(w, out, ng, bits), f);
            }
    for (int64_t out : {8, 40, 512})
        for (int64_t in : {96, 160, 4096}) {
            std::uniform_int_distribution<int> d(0, 15);
            const auto c = make_codes(out, in, [&](int64_t, int64_t) { return d(rng); });
            const auto w = pack::awq_pack_qweight(c, out, in);
            ASSERT_EQ(static_cast<int64_t>(w.size()), in * out / 8);
            EXPECT_EQ(pack::awq_unpack_qweight(w, out, in), c);
            const auto z = make_codes(out, 3, [&](int64_t, int64_t) { return d(rng); });
            EXPECT_EQ(pack::awq_unpack_qzeros(pack::awq_pack_qzeros(z, out, 3), out, 3), z);
        }
}

TEST(QuantFormats, GptqRoundTripShapesAndDtypes) {
    uint32_t seed = 10;
    for (int bits : {2, 3, 4, 8})
        for (int64_t out : {32, 96, 8, 40})
            for (int64_t in : {96, 160, 4096})
                for (int64_t gs : {32, 64, 128, -1})
                    for (bool sym : {true, false}) {
                        if (out % pack::gptq_codes_per_block(bits) != 0) continue;  // cannot pack qzeros
                        const QuantizedTensor q = random_qt(bits, gs, sym, out, in, seed++);
                        const int64_t ng = q.n_groups();
                        EXPECT_EQ(ng, gs == -1 || gs >= in ? 1 : (in + gs - 1) / gs);
                        for (GptqZeros zf : {GptqZeros::V1, GptqZeros::V2}) {
                            SCOPED_TRACE(testing::Message() << "bits " << bits << " out " << out << " in " << in
                                                            << " gs " << gs << " sym " << sym << " v" << (zf == GptqZeros::V1 ? 1 : 2));
                            const PackedLinear p = to_gptq(q, {zf, true, DType::F16});
                            ASSERT_EQ(p.tensors.size(), 4u);
                            EXPECT_EQ(p.get("qweight").dtype, DType::I32);
                            EXPECT_EQ(p.get("qweight").shape, (std::vector<int64_t>{in * bits / 32, out}));
                            EXPECT_EQ(p.get("qzeros").dtype, DType::I32);
                            EXPECT_EQ(p.get("qzeros").shape, (std::vector<int64_t>{ng, out * bits / 32}));
                            EXPECT_EQ(p.get("scales").dtype, DType::F16);
                            EXPECT_EQ(p.get("scales").shape, (std::vector<int64_t>{ng, out}));
                            EXPECT_EQ(p.get("g_idx").dtype, DType::I32);
                            EXPECT_EQ(p.get("g_idx").shape, (std::vector<int64_t>{in}));
                            const auto gi = words_of(p.get("g_idx"));
                            for (int64_t k = 0; k < in; ++k) ASSERT_EQ(gi[k], k / q.group_len());
                            const QuantizedTensor back = from_gptq(p.infos("x.y"), "x.y", q.scheme(), zf);
                            expect_same_qt(q, back);
                            EXPECT_EQ(back.name, "x.y");
                            const auto a = q.dequantize(), b = back.dequantize();
                            EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
                            const PackedLinear p2 = to_gptq(back, {zf, true, DType::F16});
                            for (const auto& t : p.tensors) EXPECT_TRUE(t.bytes == p2.get(t.suffix).bytes) << t.suffix;
                        }
                    }
}

TEST(QuantFormats, AwqRoundTripAndEquivalenceWithGptq) {
    uint32_t seed = 500;
    for (int64_t out : {8, 40, 64})
        for (int64_t in : {96, 160, 4096})
            for (int64_t gs : {32, 64, 128, -1})
                for (bool sym : {true, false}) {
                    SCOPED_TRACE(testing::Message() << "out " << out << " in " << in << " gs " << gs << " sym " << sym);
                    // AWQ stores true zeros, so z = 0 is legal here
                    const QuantizedTensor q = random_qt(4, gs, sym, out, in, seed++, 0, 15);
                    const PackedLinear p = to_awq(q);
                    ASSERT_EQ(p.tensors.size(), 3u);
                    EXPECT_FALSE(p.has("g_idx"));
                    EXPECT_EQ(p.get("qweight").shape, (std::vector<int64_t>{in, out / 8}));
                    EXPECT_EQ(p.get("qzeros").shape, (std::vector<int64_t>{q.n_groups(), out / 8}));
                    EXPECT_EQ(p.get("scales").shape, (std::vector<int64_t>{q.n_groups(), out}));
                    const QuantizedTensor back = from_awq(p.infos(""), "", q.scheme());
                    expect_same_qt(q, back);
                    const PackedLinear p2 = to_awq(back);
                    for (const auto& t : p.tensors) EXPECT_TRUE(t.bytes == p2.get(t.suffix).bytes) << t.suffix;
                    // GPTQ v2 (true zeros) of the same tensor dequantizes identically
                    const QuantizedTensor viag = from_gptq(to_gptq(q, {GptqZeros::V2}).infos("m"), "m", q.scheme(), GptqZeros::V2);
                    const auto a = back.dequantize(), b = viag.dequantize();
                    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
                }
}

TEST(QuantFormats, AutoRoundPackings) {
    EXPECT_EQ(parse_auto_round_packing(""), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(parse_auto_round_packing("auto_round:auto_gptq"), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(parse_auto_round_packing("auto_round:gptq"), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(parse_auto_round_packing("auto"), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(parse_auto_round_packing("auto_round:auto_awq"), AutoRoundPacking::AutoAwq);
    EXPECT_EQ(parse_auto_round_packing("auto_round:awq"), AutoRoundPacking::AutoAwq);
    EXPECT_EQ(parse_auto_round_packing("auto_round:gptqmodel"), AutoRoundPacking::GptqModel);
    EXPECT_EQ(parse_auto_round_packing("auto_round"), AutoRoundPacking::Plain);
    expect_error([] { parse_auto_round_packing("auto_round:fp8"); }, {"packing_format", "auto_round:fp8"});
    for (auto p : {AutoRoundPacking::AutoGptq, AutoRoundPacking::AutoAwq, AutoRoundPacking::GptqModel, AutoRoundPacking::Plain})
        EXPECT_EQ(parse_auto_round_packing(auto_round_packing_name(p)), p);
    EXPECT_EQ(default_auto_round_packing(4, true), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(default_auto_round_packing(2, true), AutoRoundPacking::AutoGptq);
    EXPECT_EQ(default_auto_round_packing(4, false), AutoRoundPacking::AutoAwq);
    EXPECT_EQ(default_auto_round_packing(3, false), AutoRoundPacking::Plain);

    const QuantizedTensor sym = random_qt(4, 128, true, 64, 256, 99);
    const PackedLinear ag = to_auto_round(sym, AutoRoundPacking::AutoGptq);
    EXPECT_FALSE(ag.has("g_idx"));  // auto_round:auto_gptq omits g_idx
    for (int32_t w : words_of(ag.get("qzeros"))) EXPECT_EQ(w, 0x77777777);  // z - 1 (docs §3.3)
    expect_same_qt(sym, from_auto_round(ag.infos("p"), "p", sym.scheme(), AutoRoundPacking::AutoGptq));
    EXPECT_TRUE(to_auto_round(sym, AutoRoundPacking::AutoAwq).get("qweight").bytes == to_awq(sym).get("qweight").bytes);

    for (int bits : {2, 3, 8}) {  // plain auto_round: true zeros (z = 0 legal), no g_idx
        const QuantizedTensor asym = random_qt(bits, 64, false, 64, 256, 100 + bits, 0, (1 << bits) - 1);
        const PackedLinear pl = to_auto_round(asym, AutoRoundPacking::Plain);
        EXPECT_FALSE(pl.has("g_idx"));
        expect_same_qt(asym, from_auto_round(pl.infos("p"), "p", asym.scheme(), AutoRoundPacking::Plain));
        const PackedLinear gm = to_auto_round(asym, AutoRoundPacking::GptqModel);
        EXPECT_TRUE(gm.has("g_idx"));
        EXPECT_TRUE(gm.get("qzeros").bytes == pl.get("qzeros").bytes);
        expect_same_qt(asym, from_auto_round(gm.infos("p"), "p", asym.scheme(), AutoRoundPacking::GptqModel));
    }
}

TEST(QuantFormats, ScaleDtypesOnExport) {
    QuantizedTensor q = random_qt(4, 32, true, 32, 64, 3);
    q.scales[0] = 0.1f;  // not fp16-representable: rounded to nearest even on export
    const PackedLinear h = to_gptq(q, {GptqZeros::V1, true, DType::F16});
    uint16_t s0;
    std::memcpy(&s0, h.get("scales").bytes.data(), 2);
    EXPECT_EQ(s0, 0x2E66);  // fp16(0.1)
    const PackedLinear b = to_gptq(q, {GptqZeros::V1, true, DType::BF16});
    EXPECT_EQ(b.get("scales").dtype, DType::BF16);
    EXPECT_EQ(from_gptq(b.infos("p"), "p", q.scheme()).scales[1], round_to_bf16(q.scales[1]));
    const PackedLinear f = to_gptq(q, {GptqZeros::V1, true, DType::F32});
    EXPECT_EQ(from_gptq(f.infos("p"), "p", q.scheme()).scales[0], 0.1f);
    q.scales[5] = 1e6f;
    expect_error([&] { to_gptq(q); }, {"test.layer [32, 64]", "scale", "not finite as F16"});
}

TEST(QuantFormats, ErrorsNameTheTensor) {
    QuantizedTensor q = random_qt(4, 32, false, 32, 64, 4);
    q.zeros[3] = 0;  // v1 cannot store z = 0 (the field would be -1 and borrow)
    expect_error([&] { to_gptq(q); }, {"test.layer [32, 64]", "zero point 0", "v1", "gptq_v2"});
    EXPECT_NO_THROW(to_gptq(q, {GptqZeros::V2}));
    EXPECT_NO_THROW(to_awq(q));
    q.zeros[3] = 16;
    expect_error([&] { to_gptq(q, {GptqZeros::V2}); }, {"test.layer", "zero point 16", "v2"});
    expect_error([&] { to_awq(q); }, {"test.layer", "zero point 16"});

    expect_error([] { to_gptq(random_qt(3, 32, true, 40, 64, 5)); }, {"test.layer [40, 64]", "multiples of 32"});
    expect_error([] { to_awq(random_qt(3, 32, true, 40, 64, 5)); }, {"test.layer", "4-bit only"});
    expect_error([] { to_awq(random_qt(4, 32, true, 36, 64, 5)); }, {"multiple of 8"});
    expect_error([] { pack::gptq_pack_qweight(std::vector<uint8_t>(40, 0), 1, 40, 3, "blk.qweight"); },
                 {"blk.qweight", "in_features = 40", "multiple of 32"});
    expect_error([] { pack::gptq_pack_qweight(std::vector<uint8_t>(8, 16), 1, 8, 4); }, {"value 16", "4 bits"});
    expect_error([] { pack::gptq_pack_qweight(std::vector<uint8_t>(8, 1), 1, 8, 5); }, {"bits 2, 3, 4, 8"});

    QuantizedTensor bad = random_qt(4, 32, true, 32, 64, 6);
    bad.codes.pop_back();
    expect_error([&] { bad.validate(); }, {"test.layer [32, 64]", "codes hold 2047"});

    const QuantizedTensor good = random_qt(4, 32, true, 32, 64, 7);
    const PackedLinear p = to_gptq(good);
    auto ts = p.infos("m.l");
    expect_error([&] { from_gptq(ts, "m.l", {4, 64, true}); }, {"m.l.qzeros", "[2, 4]", "[1, 4]"});
    expect_error([&] { from_awq(ts, "m.l", {4, 32, true}); }, {"m.l.qzeros", "expected I32 [1, 32]"});
    auto no_scales = ts;
    no_scales.erase("m.l.scales");
    expect_error([&] { from_gptq(no_scales, "m.l", {4, 32, true}); }, {"m.l.scales", "missing"});
    // act-order g_idx cannot be represented
    PackedLinear act = p;
    for (auto& t : act.tensors)
        if (t.suffix == "g_idx") std::swap(t.bytes[0], t.bytes[4 * 40]);
    expect_error([&] { from_gptq(act.infos("m.l"), "m.l", {4, 32, true}); }, {"m.l.g_idx", "act-order"});
}

// ---- through the safetensors writer and reader -------------------------------------------------------

TEST(QuantFormats, WriterReaderTrip) {
    const fs::path dir = fs::temp_directory_path() / ("autoround_quant_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const QuantizedTensor a = random_qt(4, 128, true, 64, 256, 11);
    const QuantizedTensor b = random_qt(3, 32, false, 32, 96, 12, 1, 7);
    SafetensorsWriter w;
    to_gptq(a).add_to(w, "model.layers.0.mlp.up_proj");
    to_gptq(b).add_to(w, "model.layers.0.mlp.down_proj");
    w.write_file(dir / "model.safetensors");
    const TensorStore st = TensorStore::open(dir / "model.safetensors");
    EXPECT_EQ(st.get("model.layers.0.mlp.up_proj.qweight").shape, (std::vector<int64_t>{32, 64}));
    expect_same_qt(a, from_gptq(st.tensors(), "model.layers.0.mlp.up_proj", a.scheme()));
    expect_same_qt(b, from_gptq(st.tensors(), "model.layers.0.mlp.down_proj", b.scheme()));
    fs::remove_all(dir);
}

// ---- the peer checkpoints written by Intel's Python AutoRound ------------------------------------------

namespace {

nlohmann::json quant_config(const fs::path& dir) {
    std::ifstream f(dir / "config.json");
    return nlohmann::json::parse(f).at("quantization_config");
}

std::vector<std::string> quantized_layers(const TensorStore& st) {
    std::vector<std::string> out;
    const std::string suf = ".qweight";
    for (const auto& n : st.names())
        if (n.size() > suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0)
            out.push_back(n.substr(0, n.size() - suf.size()));
    return out;
}

std::vector<uint8_t> file_bytes(const TensorInfo& t) { return {t.data, t.data + t.nbytes}; }

}  // namespace

TEST(QuantPeer, GptqAndAwqExportsHoldTheSameModelAndRepackExactly) {
    const fs::path gdir = kPeer / "exp-w4g128-auto_gptq", adir = kPeer / "exp-w4g128-auto_awq";
    const nlohmann::json gc = quant_config(gdir), ac = quant_config(adir);
    ASSERT_EQ(gc.at("quant_method"), "gptq");
    ASSERT_EQ(ac.at("quant_method"), "awq");
    EXPECT_FALSE(gc.contains("checkpoint_format"));  // absent => v1 (z - 1)
    EXPECT_EQ(ac.at("zero_point"), false);           // written for a sym model (README note)
    const QuantScheme scheme{gc.at("bits").get<int>(), gc.at("group_size").get<int64_t>(), gc.at("sym").get<bool>()};
    ASSERT_EQ(scheme.bits, 4);
    ASSERT_EQ(scheme.group_size, 128);
    ASSERT_TRUE(scheme.sym);

    const TensorStore g = TensorStore::open(gdir), a = TensorStore::open(adir);
    const auto layers = quantized_layers(g);
    ASSERT_EQ(layers.size(), 6u * 7u);
    EXPECT_EQ(quantized_layers(a), layers);
    for (const auto& l : layers) {
        SCOPED_TRACE(l);
        const QuantizedTensor qg = from_gptq(g.tensors(), l, scheme, GptqZeros::V1);
        const QuantizedTensor qa = from_awq(a.tensors(), l, scheme);
        expect_same_qt(qg, qa);
        for (int32_t z : qg.zeros) ASSERT_EQ(z, 8);
        const auto wg = qg.dequantize(), wa = qa.dequantize();
        ASSERT_EQ(std::memcmp(wg.data(), wa.data(), wg.size() * 4), 0);

        const PackedLinear pg = to_gptq(qg);  // v1, g_idx, fp16 scales: what auto-round's auto_gptq export writes
        ASSERT_EQ(pg.tensors.size(), 4u);
        for (const auto& t : pg.tensors) {
            const TensorInfo& f = g.get(l + "." + t.suffix);
            EXPECT_EQ(f.dtype, t.dtype) << t.suffix;
            EXPECT_EQ(f.shape, t.shape) << t.suffix;
            EXPECT_TRUE(file_bytes(f) == t.bytes) << t.suffix;
        }
        const PackedLinear pa = to_awq(qa);
        ASSERT_EQ(pa.tensors.size(), 3u);
        for (const auto& t : pa.tensors) {
            const TensorInfo& f = a.get(l + "." + t.suffix);
            EXPECT_EQ(f.dtype, t.dtype) << t.suffix;
            EXPECT_EQ(f.shape, t.shape) << t.suffix;
            EXPECT_TRUE(file_bytes(f) == t.bytes) << t.suffix;
        }
    }
}

TEST(QuantPeer, NativeAutoRoundCheckpointIsCloseToTheBf16Weights) {
    const fs::path dir = kPeer / "w4g128-ar200-auto_round";
    const nlohmann::json qc = quant_config(dir);
    ASSERT_EQ(qc.at("quant_method"), "auto-round");
    const AutoRoundPacking packing = parse_auto_round_packing(qc.value("packing_format", ""));
    ASSERT_EQ(packing, AutoRoundPacking::AutoGptq);
    const QuantScheme scheme{qc.at("bits").get<int>(), qc.at("group_size").get<int64_t>(), qc.at("sym").get<bool>()};

    const TensorStore q = TensorStore::open(dir), orig = TensorStore::open(kShared / "models/qwen3-nano");
    const auto layers = quantized_layers(q);
    ASSERT_EQ(layers.size(), 42u);
    double worst = 0;
    for (const auto& l : layers) {
        SCOPED_TRACE(l);
        EXPECT_FALSE(q.has(l + ".g_idx"));
        EXPECT_FALSE(q.has(l + ".weight"));
        const QuantizedTensor t = from_auto_round(q.tensors(), l, scheme, packing);
        // re-packing reproduces the file
        const PackedLinear p = to_auto_round(t, packing);
        ASSERT_EQ(p.tensors.size(), 3u);
        for (const auto& pt : p.tensors) EXPECT_TRUE(file_bytes(q.get(l + "." + pt.suffix)) == pt.bytes) << pt.suffix;

        const auto w = orig.load_f32(l + ".weight");
        const auto d = t.dequantize();
        ASSERT_EQ(w.size(), d.size());
        // mean |w - dq| measured in quantization steps |s| of each element's group
        double rel = 0;
        const int64_t ng = t.n_groups();
        for (int64_t n = 0; n < t.out_features; ++n)
            for (int64_t k = 0; k < t.in_features; ++k) {
                const size_t i = n * t.in_features + k;
                rel += std::fabs(w[i] - d[i]) / std::fabs(t.scales[n * ng + k / t.group_len()]);
            }
        rel /= static_cast<double>(w.size());
        worst = std::max(worst, rel);
        EXPECT_LT(rel, 0.5) << "mean error in steps";  // plain RTN gives ~0.25; tuning moves some codes
    }
    std::cout << "[ info ] auto_round checkpoint: worst layer mean |w - dq| = " << worst << " steps\n";
}
