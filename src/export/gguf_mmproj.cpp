// export/gguf_mmproj.cpp — see gguf_mmproj.h. The plan (names, shapes, types) is built once from
// config.json and the checkpoint and checked completely before anything is written; payloads are converted
// element by element (OpenMP for large tensors), one tensor in memory at a time, by GgufWriter producers.
#include "export/gguf_mmproj.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "export/gguf_export.h"
#include "io/gguf.h"
#include "io/model_config.h"
#include "model/qwen3_vl_vision.h"

namespace fs = std::filesystem;

namespace autoround {

namespace {

using json = nlohmann::json;

constexpr const char* kVisualPrefix = "model.visual.";

struct TypeInfo {
    GgufMmprojType t;
    const char* name;   // lower case
    const char* label;  // llama.cpp's spelling
    uint32_t file_type; // general.file_type (LlamaFileType)
    GgmlType weights;   // type of the 2-D weights
};
const TypeInfo kTypes[] = {
    {GgufMmprojType::F16, "f16", "F16", 1, GgmlType::F16},
    {GgufMmprojType::BF16, "bf16", "BF16", 32, GgmlType::BF16},
    {GgufMmprojType::F32, "f32", "F32", 0, GgmlType::F32},
};

const TypeInfo& info(GgufMmprojType t) {
    for (const auto& i : kTypes)
        if (i.t == t) return i;
    fail("GGUF mmproj: unknown file type");
}

std::string dims_str(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

// ---- the source: configs -----------------------------------------------------------------------------

struct MmprojSource {
    ModelConfig text;
    Qwen3VLVisionConfig vis;
    uint32_t image_size = 0;
    std::array<float, 3> mean{}, std{};
};

// image_mean / image_std: preprocessor_config.json, overridden key by key by processor_config.json and its
// "image_processor" object (the newer converter's merge; the older one read preprocessor_config.json only).
void read_image_norm(const fs::path& dir, MmprojSource& s) {
    json merged = json::object();
    std::vector<std::string> read;
    std::error_code ec;
    const fs::path pre = dir / "preprocessor_config.json", proc = dir / "processor_config.json";
    auto merge = [&](const json& j) {
        if (!j.is_object()) return;
        for (const auto& [k, v] : j.items()) merged[k] = v;
    };
    if (fs::exists(pre, ec)) {
        merge(read_json_file(pre));
        read.push_back(pre.filename().string());
    }
    if (fs::exists(proc, ec)) {
        const json j = read_json_file(proc);
        merge(j);
        if (j.is_object() && j.contains("image_processor")) merge(j.at("image_processor"));
        read.push_back(proc.filename().string());
    }
    check(!read.empty(), "GGUF mmproj: ", dir.string(), " has neither preprocessor_config.json nor ",
          "processor_config.json; the mmproj needs the image normalisation (image_mean / image_std): copy ",
          "preprocessor_config.json from the original model");
    std::string where = read[0];
    for (size_t i = 1; i < read.size(); ++i) where += " + " + read[i];
    auto triple = [&](const char* key, std::array<float, 3>& out) {
        check(merged.contains(key), "GGUF mmproj: ", where, " in ", dir.string(), " has no ", key,
              "; copy preprocessor_config.json from the original model");
        const json& a = merged.at(key);
        check(a.is_array() && a.size() == 3 && std::all_of(a.begin(), a.end(), [](const json& x) { return x.is_number(); }),
              "GGUF mmproj: ", key, " in ", where, " (", dir.string(), ") must be a list of 3 numbers (R, G, B), got ",
              a.dump());
        for (size_t i = 0; i < 3; ++i) out[i] = a[i].get<float>();
    };
    triple("image_mean", s.mean);
    triple("image_std", s.std);
}

MmprojSource read_configs(const fs::path& dir) {
    MmprojSource s;
    const fs::path cfg_path = dir / "config.json";
    s.text = load_model_config(dir);
    check(s.text.architecture == "Qwen3VLForConditionalGeneration" && s.text.vision_language, "GGUF mmproj: ",
          cfg_path.string(), " is ", s.text.architecture, ", a model without a vision tower; the mmproj GGUF "
          "holds the vision encoder of a Qwen3-VL model (Qwen3VLForConditionalGeneration). Export only the "
          "language-model GGUF for this model");
    const json j = read_json_file(cfg_path);
    check(j.contains("vision_config") && j.at("vision_config").is_object(), "GGUF mmproj: ", cfg_path.string(),
          " has no vision_config object; the mmproj needs the vision tower's configuration");
    const json& vj = j.at("vision_config");
    s.vis = parse_qwen3_vl_vision_config(vj, cfg_path.string());
    const Qwen3VLVisionConfig& v = s.vis;
    check(v.temporal_patch_size == 2, "GGUF mmproj: ", cfg_path.string(), ": vision_config.temporal_patch_size is ",
          v.temporal_patch_size, "; llama.cpp's qwen3vl mmproj splits the Conv3d patch embedding into exactly 2 ",
          "Conv2d kernels and supports temporal_patch_size 2 only");
    check(v.out_hidden_size == s.text.hidden_size, "GGUF mmproj: ", cfg_path.string(), ": vision_config.out_hidden_size ",
          v.out_hidden_size, " differs from text_config.hidden_size ", s.text.hidden_size,
          "; the projector output must match the language model's embedding width");
    std::set<int> ds;
    for (int i : v.deepstack_visual_indexes)
        check(ds.insert(i).second, "GGUF mmproj: ", cfg_path.string(), ": vision_config.deepstack_visual_indexes lists ",
              "block ", i, " twice; each DeepStack merger must tap a different block");
    if (vj.contains("image_size")) {
        const json& is = vj.at("image_size");
        check(is.is_number_integer() && is.get<int64_t>() > 0 && is.get<int64_t>() <= (1 << 24), "GGUF mmproj: ",
              cfg_path.string(), ": vision_config.image_size must be a positive integer, got ", is.dump());
        s.image_size = static_cast<uint32_t>(is.get<int64_t>());
    } else {
        // convert_hf_to_gguf.py: int(sqrt(num_position_embeddings) * patch_size); the grid is a perfect square.
        const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(v.num_position_embeddings))));
        s.image_size = static_cast<uint32_t>(side * v.patch_size);
    }
    read_image_norm(dir, s);
    return s;
}

// ---- the source: tensors -------------------------------------------------------------------------------

struct PlannedTensor {
    std::string gguf, hf;
    const TensorInfo* t = nullptr;
    std::vector<int64_t> ne;  // GGUF dims, innermost first
    uint32_t type = 0;
    int temporal = -1;        // >= 0: this frame's kernel of the Conv3d patch embedding
};

// The checkpoint tensor `hf` with `shape`; Error when missing, misshapen or not a float dtype.
const TensorInfo& source_tensor(const fs::path& dir, const TensorStore& st, const std::string& hf,
                                const std::vector<int64_t>& shape) {
    if (!st.has(hf)) {
        const std::string base = hf.size() > 7 && hf.compare(hf.size() - 7, 7, ".weight") == 0 ? hf.substr(0, hf.size() - 7) : hf;
        check(!st.has(base + ".qweight"), "GGUF mmproj: vision tensor ", hf, " is stored quantized (", base,
              ".qweight) in ", dir.string(), "; the mmproj holds the 16-bit vision tower: quantize without "
              "--quant_nontext_module, or write the mmproj from the original model");
        fail("GGUF mmproj: vision tensor ", hf, " is missing from ", dir.string(), " (expected shape ", dims_str(shape),
             " from config.json's vision_config); the checkpoint is incomplete — re-download or re-export it");
    }
    const TensorInfo& t = st.get(hf);
    check(t.shape == shape, "GGUF mmproj: vision tensor ", hf, " in ", t.file.string(), " has shape ", t.shape_str(),
          ", config.json's vision_config says ", dims_str(shape), "; the weights do not belong to this config");
    check(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32, "GGUF mmproj: vision tensor ", hf,
          " in ", t.file.string(), " is ", dtype_name(t.dtype), "; only BF16, F16 and F32 tensors can be written");
    return t;
}

std::vector<PlannedTensor> plan_tensors(const fs::path& dir, const TensorStore& st, const MmprojSource& s,
                                        GgufMmprojType ft) {
    const Qwen3VLVisionConfig& v = s.vis;
    const int64_t H = v.hidden_size, I = v.intermediate_size, O = v.out_hidden_size, C = v.in_channels,
                  p = v.patch_size, T = v.temporal_patch_size;
    const int64_t M = int64_t(v.spatial_merge_size) * v.spatial_merge_size * H;  // merger width
    const uint32_t weights = static_cast<uint32_t>(info(ft).weights);
    const uint32_t f32 = static_cast<uint32_t>(GgmlType::F32);
    // MmprojModel.tensor_force_quant: the patch kernels are F16 in F16 files, F32 otherwise.
    const uint32_t patch = ft == GgufMmprojType::F16 ? static_cast<uint32_t>(GgmlType::F16) : f32;

    std::vector<PlannedTensor> out;
    auto add = [&](const std::string& hf_rel, const std::string& gguf, std::vector<int64_t> shape, uint32_t type,
                   int temporal = -1) {
        PlannedTensor pt;
        pt.hf = kVisualPrefix + hf_rel;
        pt.gguf = gguf;
        pt.t = &source_tensor(dir, st, pt.hf, shape);
        if (temporal >= 0) shape.erase(shape.begin() + 2);  // [H, C, T, p, p] -> [H, C, p, p]
        pt.ne.assign(shape.rbegin(), shape.rend());
        pt.type = shape.size() == 1 ? f32 : type;  // gguf-py: 1-D tensors are always F32
        pt.temporal = temporal;
        out.push_back(std::move(pt));
    };
    // A Linear: weight [out, in] takes `wtype`, bias [out] F32.
    auto linear = [&](const std::string& hf, const std::string& gguf, int64_t o, int64_t in, uint32_t wtype) {
        add(hf + ".weight", gguf + ".weight", {o, in}, wtype);
        add(hf + ".bias", gguf + ".bias", {o}, f32);
    };
    auto norm = [&](const std::string& hf, const std::string& gguf, int64_t n) {
        add(hf + ".weight", gguf + ".weight", {n}, f32);
        add(hf + ".bias", gguf + ".bias", {n}, f32);
    };

    add("patch_embed.proj.weight", "v.patch_embd.weight", {H, C, T, p, p}, patch, 0);
    add("patch_embed.proj.weight", "v.patch_embd.weight.1", {H, C, T, p, p}, patch, 1);
    add("patch_embed.proj.bias", "v.patch_embd.bias", {H}, f32);
    add("pos_embed.weight", "v.position_embd.weight", {v.num_position_embeddings, H}, f32);  // gguf-py: F32
    for (int b = 0; b < v.depth; ++b) {
        const std::string hb = "blocks." + std::to_string(b) + ".", gb = "v.blk." + std::to_string(b) + ".";
        norm(hb + "norm1", gb + "ln1", H);
        linear(hb + "attn.qkv", gb + "attn_qkv", 3 * H, H, weights);
        linear(hb + "attn.proj", gb + "attn_out", H, H, weights);
        norm(hb + "norm2", gb + "ln2", H);
        linear(hb + "mlp.linear_fc1", gb + "ffn_up", I, H, weights);
        linear(hb + "mlp.linear_fc2", gb + "ffn_down", H, I, weights);
    }
    for (size_t k = 0; k < v.deepstack_visual_indexes.size(); ++k) {
        const std::string hd = "deepstack_merger_list." + std::to_string(k) + ".";
        const std::string gd = "v.deepstack." + std::to_string(v.deepstack_visual_indexes[k]) + ".";
        norm(hd + "norm", gd + "norm", M);
        linear(hd + "linear_fc1", gd + "fc1", M, M, weights);
        linear(hd + "linear_fc2", gd + "fc2", O, M, weights);
    }
    norm("merger.norm", "v.post_ln", H);
    linear("merger.linear_fc1", "mm.0", M, M, weights);
    linear("merger.linear_fc2", "mm.2", O, M, weights);

    // Anything else under model.visual. would be lost silently (the converter fails on unmapped names).
    std::set<std::string> used;
    for (const PlannedTensor& pt : out) used.insert(pt.hf);
    for (const auto& [name, t] : st.tensors())
        check(name.rfind(kVisualPrefix, 0) != 0 || used.count(name), "GGUF mmproj: tensor ", name, " in ",
              t.file.string(), " is not part of the Qwen3-VL vision tower this writer knows (config.json depth ",
              v.depth, ", ", v.deepstack_visual_indexes.size(), " DeepStack mergers); the checkpoint does not match "
              "its config, or is a variant llama.cpp's qwen3vl mmproj cannot hold");
    return out;
}

// ---- metadata ------------------------------------------------------------------------------------------

GgufValue f32_array(const std::array<float, 3>& a) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.elem = GgufValueType::FLOAT32;
    v.count = a.size();
    v.raw.resize(a.size() * 4);
    std::memcpy(v.raw.data(), a.data(), v.raw.size());
    return v;
}

GgufValue bool_array(const std::vector<bool>& b) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.elem = GgufValueType::BOOL;
    v.count = b.size();
    for (bool x : b) v.raw.push_back(x ? 1 : 0);
    return v;
}

void add_metadata(GgufWriter& w, const MmprojSource& s, GgufMmprojType ft, const std::string& model_name,
                  const fs::path& dir) {
    const Qwen3VLVisionConfig& v = s.vis;
    auto u32 = [](int x) { return GgufValue::u32(static_cast<uint32_t>(x)); };
    w.set("general.architecture", GgufValue::string("clip"));
    w.set("general.type", GgufValue::string("mmproj"));
    w.set("general.name", GgufValue::string(model_name.empty() ? gguf_model_basename(fs::absolute(dir).lexically_normal().string())
                                                               : gguf_model_basename(model_name)));
    w.set("general.file_type", GgufValue::u32(info(ft).file_type));
    w.set("general.quantization_version", GgufValue::u32(2));
    w.set("clip.has_vision_encoder", GgufValue::boolean(true));
    w.set("clip.projector_type", GgufValue::string("qwen3vl_merger"));
    w.set("clip.use_gelu", GgufValue::boolean(true));
    w.set("clip.vision.projection_dim", u32(s.text.hidden_size));
    w.set("clip.vision.image_size", GgufValue::u32(s.image_size));
    w.set("clip.vision.patch_size", u32(v.patch_size));
    w.set("clip.vision.embedding_length", u32(v.hidden_size));
    w.set("clip.vision.feed_forward_length", u32(v.intermediate_size));
    w.set("clip.vision.block_count", u32(v.depth));
    w.set("clip.vision.attention.head_count", u32(v.num_heads));
    w.set("clip.vision.attention.layer_norm_epsilon", GgufValue::f32(s.text.rms_norm_eps));
    w.set("clip.vision.image_mean", f32_array(s.mean));
    w.set("clip.vision.image_std", f32_array(s.std));
    w.set("clip.vision.spatial_merge_size", u32(v.spatial_merge_size));
    std::vector<bool> ds(static_cast<size_t>(v.depth), false);
    for (int i : v.deepstack_visual_indexes) ds[static_cast<size_t>(i)] = true;
    w.set("clip.vision.is_deepstack_layers", bool_array(ds));
}

// ---- payloads ------------------------------------------------------------------------------------------

float source_at(const uint8_t* p, DType dt, int64_t i) {
    switch (dt) {
        case DType::BF16: {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            return bf16_to_float(h);
        }
        case DType::F16: {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            return fp16_to_float(h);
        }
        default: {
            float f;
            std::memcpy(&f, p + 4 * i, 4);
            return f;
        }
    }
}

// Converts n source elements starting at element `first` into `dst` (GGUF type `type`), as gguf-py does:
// float32 expansion, then round-to-nearest-even. F16->F16 and F32->F32 are byte copies (gguf-py keeps those
// dtypes untouched). Returns false when a finite value overflows float16.
bool convert_run(const TensorInfo& t, int64_t first, int64_t n, uint32_t type, uint8_t* dst) {
    const GgmlType gt = static_cast<GgmlType>(type);
    const size_t es = dtype_size(t.dtype);
    const uint8_t* src = t.data + static_cast<size_t>(first) * es;
    if ((gt == GgmlType::F16 && t.dtype == DType::F16) || (gt == GgmlType::F32 && t.dtype == DType::F32)) {
        std::memcpy(dst, src, static_cast<size_t>(n) * es);
        return true;
    }
    bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) {
        const float f = source_at(src, t.dtype, i);
        if (gt == GgmlType::F32) {
            std::memcpy(dst + 4 * i, &f, 4);
        } else {
            const uint16_t h = gt == GgmlType::F16 ? float_to_fp16(f) : float_to_bf16(f);
            std::memcpy(dst + 2 * i, &h, 2);
            if (gt == GgmlType::F16 && (h & 0x7c00u) == 0x7c00u && std::isfinite(f)) ok = false;
        }
    }
    return ok;
}

size_t type_size(uint32_t type) { return static_cast<size_t>(ggml_type_traits(type).bytes); }

void produce(const PlannedTensor& pt, uint8_t* dst, size_t nbytes) {
    const TensorInfo& t = *pt.t;
    int64_t n = 1;
    for (int64_t d : pt.ne) n *= d;
    check(static_cast<size_t>(n) * type_size(pt.type) == nbytes, "GGUF mmproj: internal size mismatch for ", pt.gguf);
    bool ok = true;
    if (pt.temporal < 0) {
        ok = convert_run(t, 0, n, pt.type, dst);
    } else {
        // Source [H, C, T, p, p]: the kernel of frame k is, per (h, c), the p·p run at ((h·C + c)·T + k)·p·p.
        const int64_t T = t.shape[2], pp = t.shape[3] * t.shape[4], runs = t.shape[0] * t.shape[1];
        const size_t es = type_size(pt.type);
        for (int64_t r = 0; r < runs; ++r)
            ok = convert_run(t, (r * T + pt.temporal) * pp, pp, pt.type, dst + static_cast<size_t>(r * pp) * es) && ok;
    }
    check(ok, "GGUF mmproj: tensor ", pt.hf, " has values beyond the float16 range; write the mmproj as bf16 instead of f16");
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------------------

GgufMmprojType parse_gguf_mmproj_type(std::string_view name) {
    std::string s(name);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "fp16" || s == "float16") s = "f16";
    if (s == "bfloat16") s = "bf16";
    if (s == "fp32" || s == "float32") s = "f32";
    for (const auto& i : kTypes)
        if (s == i.name) return i.t;
    fail("mmproj type '", std::string(name), "' is not supported; the vision tower is written unquantized as f16 "
         "(llama.cpp's default), bf16 or f32");
}

std::string_view gguf_mmproj_type_label(GgufMmprojType t) { return info(t).label; }
uint32_t gguf_mmproj_file_type_id(GgufMmprojType t) { return info(t).file_type; }

std::string gguf_mmproj_file_name(const std::string& model_name_or_path, GgufMmprojType t) {
    return "mmproj-" + gguf_model_basename(model_name_or_path) + "-" + std::string(gguf_mmproj_type_label(t)) + ".gguf";
}

// ---- export --------------------------------------------------------------------------------------------

void validate_gguf_mmproj(const fs::path& source_dir, const TensorStore& source, GgufMmprojType t) {
    const MmprojSource s = read_configs(source_dir);
    (void)plan_tensors(source_dir, source, s, t);
}

GgufMmprojResult write_gguf_mmproj(const fs::path& source_dir, const TensorStore& source, GgufMmprojType t,
                                   const std::string& model_name, const fs::path& out_file) {
    const MmprojSource s = read_configs(source_dir);
    const std::vector<PlannedTensor> plan = plan_tensors(source_dir, source, s, t);

    GgufWriter w;
    add_metadata(w, s, t, model_name, source_dir);
    GgufMmprojResult res;
    res.file = out_file;
    for (const PlannedTensor& pt : plan) {
        const PlannedTensor* p = &pt;  // `plan` outlives w.write()
        w.add_tensor(pt.gguf, pt.ne, pt.type, [p](uint8_t* dst, size_t n) { produce(*p, dst, n); });
        res.tensors.push_back({pt.gguf, pt.hf, pt.type, pt.ne});
    }
    w.write(out_file);
    return res;
}

}  // namespace autoround
