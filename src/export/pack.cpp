// export/pack.cpp — whole-tensor GPTQ and AWQ packers/unpackers. The bit layouts are defined (and
// documented) once in pack.h; everything here is loops over those inline helpers plus shape checks.
//
// The loops walk one "block" of codes at a time (the codes that fill whole words: 32/b codes = 1 word
// for 2/4/8 bits, 32 codes = 3 words for 3 bits), so each block of a column is packed independently
// and the 3-bit straddling codes never cross a block.
#include "export/pack.h"

#include <cstring>

#include "core/error.h"

namespace autoround::pack {

namespace {

std::string shape2(int64_t a, int64_t b) {
    std::string s = "[";
    s += std::to_string(a);
    s += ", ";
    s += std::to_string(b);
    s += "]";
    return s;
}

void check_gptq_axis(const char* what, const char* axis_name, int64_t len, int bits) {
    check(gptq_bits_ok(bits), what, ": GPTQ packing supports bits 2, 3, 4, 8, not ", bits);
    const int64_t blk = gptq_codes_per_block(bits);
    check(len > 0 && len % blk == 0, what, ": the packed axis (", axis_name, " = ", len, ") must be a positive multiple of ",
          blk, " for ", bits, "-bit GPTQ packing");
}

void check_size(const char* what, size_t got, int64_t want, const std::string& shape) {
    check(static_cast<int64_t>(got) == want, what, ": expected ", want, " elements for shape ", shape, ", got ", got);
}

// Packing of a value that does not fit its field would silently corrupt its neighbours.
void check_fits(const char* what, uint32_t v, int bits, int64_t r, int64_t c) {
    if (v > code_mask(bits)) fail(what, ": value ", v, " at [", r, ", ", c, "] does not fit in ", bits, " bits");
}

std::vector<int32_t> to_int32(const std::vector<uint32_t>& u) {
    std::vector<int32_t> out(u.size());
    if (!u.empty()) std::memcpy(out.data(), u.data(), u.size() * sizeof(uint32_t));  // bit reinterpretation
    return out;
}

const uint32_t* as_u32(std::span<const int32_t> s) { return reinterpret_cast<const uint32_t*>(s.data()); }

// Packs a logical [len, cols] matrix with one GPTQ stream per column running down the rows:
// at(i, c) is stream element i of column c; result [len*bits/32, cols] (consecutive words of a stream
// are `cols` apart, i.e. one row apart).
template <typename At>
std::vector<uint32_t> pack_streams_down(int64_t len, int64_t cols, int bits, const char* what, At at) {
    const int64_t blk = gptq_codes_per_block(bits);
    const int64_t wpb = gptq_words_for(blk, bits);  // words per block: 1, or 3 for 3-bit
    std::vector<uint32_t> words(static_cast<size_t>(gptq_words_for(len, bits) * cols), 0u);
    for (int64_t t = 0; t < len / blk; ++t) {
        uint32_t* base = words.data() + t * wpb * cols;
        for (int64_t c = 0; c < cols; ++c) {
            for (int64_t i = 0; i < blk; ++i) {
                const uint32_t v = at(t * blk + i, c);
                check_fits(what, v, bits, t * blk + i, c);
                gptq_put(base + c, cols, i, bits, v);
            }
        }
    }
    return words;
}

template <typename Put>
void unpack_streams_down(const uint32_t* words, int64_t len, int64_t cols, int bits, Put put) {
    const int64_t blk = gptq_codes_per_block(bits);
    const int64_t wpb = gptq_words_for(blk, bits);
    for (int64_t t = 0; t < len / blk; ++t) {
        const uint32_t* base = words + t * wpb * cols;
        for (int64_t c = 0; c < cols; ++c)
            for (int64_t i = 0; i < blk; ++i) put(t * blk + i, c, gptq_get(base + c, cols, i, bits));
    }
}

}  // namespace

// ---- GPTQ ---------------------------------------------------------------------------------------------

std::vector<int32_t> gptq_pack_qweight(std::span<const uint8_t> codes, int64_t out, int64_t in, int bits,
                                       const char* what) {
    check_gptq_axis(what, "in_features", in, bits);
    check(out > 0, what, ": out_features must be positive, got ", out);
    check_size(what, codes.size(), out * in, "[out, in] = " + shape2(out, in));
    // stream element k of column n = codes[n][k]; result [in*bits/32, out]
    return to_int32(pack_streams_down(in, out, bits, what, [&](int64_t k, int64_t n) {
        return static_cast<uint32_t>(codes[static_cast<size_t>(n * in + k)]);
    }));
}

std::vector<uint8_t> gptq_unpack_qweight(std::span<const int32_t> qweight, int64_t out, int64_t in, int bits,
                                         const char* what) {
    check_gptq_axis(what, "in_features", in, bits);
    check(out > 0, what, ": out_features must be positive, got ", out);
    check_size(what, qweight.size(), gptq_words_for(in, bits) * out, shape2(gptq_words_for(in, bits), out));
    std::vector<uint8_t> codes(static_cast<size_t>(out * in));
    unpack_streams_down(as_u32(qweight), in, out, bits, [&](int64_t k, int64_t n, uint32_t v) {
        codes[static_cast<size_t>(n * in + k)] = static_cast<uint8_t>(v);
    });
    return codes;
}

std::vector<int32_t> gptq_pack_qzeros(std::span<const uint8_t> fields, int64_t out, int64_t ng, int bits,
                                      const char* what) {
    check_gptq_axis(what, "out_features", out, bits);
    check(ng > 0, what, ": number of groups must be positive, got ", ng);
    check_size(what, fields.size(), out * ng, "[out, n_groups] = " + shape2(out, ng));
    // Each group row g of the [ng, out*bits/32] result is one stream along out (word stride 1).
    const int64_t wpr = gptq_words_for(out, bits);
    std::vector<uint32_t> words(static_cast<size_t>(ng * wpr), 0u);
    for (int64_t g = 0; g < ng; ++g) {
        uint32_t* row = words.data() + g * wpr;
        for (int64_t n = 0; n < out; ++n) {
            const uint32_t v = fields[static_cast<size_t>(n * ng + g)];
            check_fits(what, v, bits, n, g);
            gptq_put(row, 1, n, bits, v);
        }
    }
    return to_int32(words);
}

std::vector<uint8_t> gptq_unpack_qzeros(std::span<const int32_t> qzeros, int64_t out, int64_t ng, int bits,
                                        const char* what) {
    check_gptq_axis(what, "out_features", out, bits);
    check(ng > 0, what, ": number of groups must be positive, got ", ng);
    const int64_t wpr = gptq_words_for(out, bits);
    check_size(what, qzeros.size(), ng * wpr, shape2(ng, wpr));
    std::vector<uint8_t> fields(static_cast<size_t>(out * ng));
    const uint32_t* w = as_u32(qzeros);
    for (int64_t g = 0; g < ng; ++g)
        for (int64_t n = 0; n < out; ++n)
            fields[static_cast<size_t>(n * ng + g)] = static_cast<uint8_t>(gptq_get(w + g * wpr, 1, n, bits));
    return fields;
}

// ---- AWQ ----------------------------------------------------------------------------------------------

namespace {
void check_awq_out(const char* what, int64_t out) {
    check(out > 0 && out % 8 == 0, what, ": AWQ packing needs out_features to be a positive multiple of 8, got ", out);
}
}  // namespace

std::vector<int32_t> awq_pack_qweight(std::span<const uint8_t> codes, int64_t out, int64_t in, const char* what) {
    check_awq_out(what, out);
    check(in > 0, what, ": in_features must be positive, got ", in);
    check_size(what, codes.size(), out * in, "[out, in] = " + shape2(out, in));
    const int64_t wpr = out / 8;
    std::vector<uint32_t> words(static_cast<size_t>(in * wpr), 0u);
    for (int64_t n = 0; n < out; ++n) {
        const uint8_t* src = codes.data() + n * in;
        for (int64_t k = 0; k < in; ++k) {
            check_fits(what, src[k], 4, n, k);
            awq_put(words.data() + k * wpr, n, src[k]);
        }
    }
    return to_int32(words);
}

std::vector<uint8_t> awq_unpack_qweight(std::span<const int32_t> qweight, int64_t out, int64_t in, const char* what) {
    check_awq_out(what, out);
    check(in > 0, what, ": in_features must be positive, got ", in);
    const int64_t wpr = out / 8;
    check_size(what, qweight.size(), in * wpr, shape2(in, wpr));
    std::vector<uint8_t> codes(static_cast<size_t>(out * in));
    const uint32_t* w = as_u32(qweight);
    for (int64_t k = 0; k < in; ++k)
        for (int64_t n = 0; n < out; ++n) codes[static_cast<size_t>(n * in + k)] = static_cast<uint8_t>(awq_get(w + k * wpr, n));
    return codes;
}

std::vector<int32_t> awq_pack_qzeros(std::span<const uint8_t> fields, int64_t out, int64_t ng, const char* what) {
    check_awq_out(what, out);
    check(ng > 0, what, ": number of groups must be positive, got ", ng);
    check_size(what, fields.size(), out * ng, "[out, n_groups] = " + shape2(out, ng));
    const int64_t wpr = out / 8;
    std::vector<uint32_t> words(static_cast<size_t>(ng * wpr), 0u);
    for (int64_t n = 0; n < out; ++n)
        for (int64_t g = 0; g < ng; ++g) {
            const uint8_t v = fields[static_cast<size_t>(n * ng + g)];
            check_fits(what, v, 4, n, g);
            awq_put(words.data() + g * wpr, n, v);
        }
    return to_int32(words);
}

std::vector<uint8_t> awq_unpack_qzeros(std::span<const int32_t> qzeros, int64_t out, int64_t ng, const char* what) {
    check_awq_out(what, out);
    check(ng > 0, what, ": number of groups must be positive, got ", ng);
    const int64_t wpr = out / 8;
    check_size(what, qzeros.size(), ng * wpr, shape2(ng, wpr));
    std::vector<uint8_t> fields(static_cast<size_t>(out * ng));
    const uint32_t* w = as_u32(qzeros);
    for (int64_t g = 0; g < ng; ++g)
        for (int64_t n = 0; n < out; ++n) fields[static_cast<size_t>(n * ng + g)] = static_cast<uint8_t>(awq_get(w + g * wpr, n));
    return fields;
}

}  // namespace autoround::pack
