// export/exporter.cpp — the common export driver (see exporter.h): format names, folder names, the
// resolution of the model (which layers are quantized, which Linears stay full precision), validation of
// every layer against every requested format before anything is written, and the writing of each folder
// (tensors, config.json, quantization_config.json / quantize_config.json, tokenizer & friends) through
// AtomicDir. Per-format decisions live in auto_round_format.cpp, gptq_format.cpp, awq_format.cpp and
// fake_format.cpp.
#include "export/exporter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_dir.h"
#include "core/bf16.h"
#include "core/error.h"
#include "export/export_formats.h"
#include "export/gguf_mmproj.h"
#include "io/model_config.h"
#include "quant/gguf_double_quant.h"

namespace fs = std::filesystem;

namespace autoround {

using export_detail::FormatSpec;
using export_detail::ResolvedExport;

namespace {

// Files copied verbatim from the source folder when present (autoround-algorithm.md §5.2: tokenizer,
// processor and generation files; transformers' save_pretrained writes the same set).
const char* const kSideFiles[] = {
    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json",
};

const char* const kSupportedFormats =
    "auto_round, auto_round:auto_gptq, auto_round:auto_awq, auto_round:gptqmodel, auto_gptq, auto_awq, fake, "
    "gguf:q4_0, gguf:q4_1, gguf:q8_0, gguf:q4_k_s, gguf:q4_k_m, gguf:q6_k, gguf:f16, gguf:bf16, gguf:f32";

// ExportFormat <-> GgufFileType for the gguf:* formats.
const std::pair<ExportFormat, GgufFileType> kGgufFormats[] = {
    {ExportFormat::GgufF32, GgufFileType::F32},       {ExportFormat::GgufF16, GgufFileType::F16},
    {ExportFormat::GgufBF16, GgufFileType::BF16},     {ExportFormat::GgufQ4_0, GgufFileType::Q4_0},
    {ExportFormat::GgufQ4_1, GgufFileType::Q4_1},     {ExportFormat::GgufQ8_0, GgufFileType::Q8_0},
    {ExportFormat::GgufQ4_K_S, GgufFileType::Q4_K_S}, {ExportFormat::GgufQ4_K_M, GgufFileType::Q4_K_M},
    {ExportFormat::GgufQ6_K, GgufFileType::Q6_K},
};

bool ends_with(const std::string& s, std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string shape_str(int64_t out, int64_t in) { return "[" + std::to_string(out) + ", " + std::to_string(in) + "]"; }

// Position of the first ".<digits>." in a module name (the index inside a block list), npos if none.
size_t block_index_pos(const std::string& name) {
    for (size_t p = name.find('.'); p != std::string::npos; p = name.find('.', p + 1)) {
        size_t e = p + 1;
        while (e < name.size() && std::isdigit(static_cast<unsigned char>(name[e]))) ++e;
        if (e > p + 1 && e < name.size() && name[e] == '.') return p;
    }
    return std::string::npos;
}

// Whether the user's config has a rule that names this layer explicitly (as opposed to the defaults:
// "outside the blocks" or "lm_head is not quantized").
bool explicit_rule(const QuantizationConfig& qc, const std::string& name) {
    if (qc.layer_overrides.count(name)) return true;
    for (const auto& p : qc.pattern_overrides)
        if (pattern_matches(p, name)) return true;
    for (const auto& m : qc.modules_to_not_convert)
        if (!m.empty() && name.find(m) != std::string::npos) return true;
    for (const auto& g : qc.modules_in_block_to_quantize)
        if (!g.empty()) return true;
    return false;
}

bool is_float_dtype(DType d) { return d == DType::BF16 || d == DType::F16 || d == DType::F32; }

ResolvedExport resolve(const TensorStore& src, const QuantizationConfig& user_qc, const QuantizedLayers& layers) {
    check(!layers.empty(), "export: no quantized layers were given; nothing to export");
    ResolvedExport r;
    r.source = &src;
    r.layers = &layers;
    r.qc = user_qc;
    // block_name_to_quantize: the block lists that hold quantized layers ("model.layers" for Qwen3,
    // "model.language_model.layers" for Qwen3-VL), as auto-round records its quant_block_list.
    if (r.qc.block_name_to_quantize.empty()) {
        for (const auto& [name, q] : layers) {
            const size_t p = block_index_pos(name);
            if (p == std::string::npos) continue;
            const std::string b = name.substr(0, p);
            if (std::find(r.qc.block_name_to_quantize.begin(), r.qc.block_name_to_quantize.end(), b) ==
                r.qc.block_name_to_quantize.end())
                r.qc.block_name_to_quantize.push_back(b);
        }
    }

    for (const auto& [name, q] : layers) {
        check(!name.empty(), "export: a quantized layer has an empty name");
        const std::string wname = name + ".weight";
        check(src.has(wname), "quantized layer ", name, ": the source checkpoint has no tensor ", wname,
              is_lm_head_name(name) ? " (lm_head is tied to the embeddings in this model and cannot be quantized)"
                                    : " (layer names must be the module names, without \".weight\")");
        const TensorInfo& t = src.get(wname);
        check(t.shape == std::vector<int64_t>{q.out_features, q.in_features}, "quantized layer ", name, " is ",
              shape_str(q.out_features, q.in_features), " but the source tensor ", wname, " is ", t.shape_str());
        check(is_float_dtype(t.dtype), "source tensor ", wname, " is ", dtype_name(t.dtype),
              "; only BF16, F16 and F32 weights can be exported");
        check(q.name.empty() || q.name == name, "quantized layer ", name, ": the tensor calls itself '", q.name, "'");
        q.validate();

        const LayerScheme want{q.bits, q.group_size, q.sym, "int"};
        const LayerScheme s = r.qc.scheme_for(name);
        const bool named = explicit_rule(user_qc, name);
        if (!s.quantized()) {
            check(!named, "quantized layer ", name, ": the quantization config marks it unquantized (bits ", s.bits,
                  ") but quantized codes were given for it; drop one or the other");
            r.qc.layer_overrides[name] = want;  // e.g. a quantized lm_head, or a layer outside the blocks
            if (is_lm_head_name(name)) r.qc.quant_lm_head = true;
        } else if (s.bits != q.bits || s.group_size != q.group_size || s.sym != q.sym) {
            check(!named, "quantized layer ", name, " is ", q.bits, "-bit, group_size ", q.group_size, ", ",
                  q.sym ? "sym" : "asym", " but the quantization config says ", s.bits, "-bit, group_size ", s.group_size,
                  ", ", s.sym ? "sym" : "asym");
            r.qc.layer_overrides[name] = want;
        }
    }

    // The other 2-D `.weight` tensors: inside a quantized block they are Linears kept in full precision,
    // which every consumer must be told about; outside, they are embeddings, lm_head or other modules.
    for (const auto& [tname, t] : src.tensors()) {
        if (!ends_with(tname, ".weight") || t.shape.size() != 2) continue;
        const std::string layer = tname.substr(0, tname.size() - 7);
        if (layers.count(layer)) continue;
        if (!r.qc.block_of(layer).empty()) {
            if (r.qc.scheme_for(layer).quantized()) {
                LayerScheme skip = r.qc.global();
                skip.bits = 16;
                skip.data_type = "float";
                r.qc.layer_overrides[layer] = skip;
            }
            r.skipped_in_block.push_back(layer);
        } else if (!is_lm_head_name(layer) && layer.find("embed") == std::string::npos) {
            const size_t p = block_index_pos(layer);
            std::string what = p == std::string::npos ? layer : layer.substr(0, p);
            // Root-agnostic ("model.visual.blocks" -> "visual.blocks"): vLLM names a VLM's modules without the
            // HF root (e.g. "visual.blocks.0.attn.qkv"), and AWQ's modules_to_not_convert / GPTQ's "-:" rules
            // must match both spellings (checkpoint-formats.md §1.9).
            if (what.rfind("model.", 0) == 0 && what.find('.', 6) != std::string::npos) what = what.substr(6);
            if (std::find(r.unquantized_outside.begin(), r.unquantized_outside.end(), what) == r.unquantized_outside.end())
                r.unquantized_outside.push_back(what);
        }
    }
    std::sort(r.skipped_in_block.begin(), r.skipped_in_block.end());
    return r;
}

FormatSpec make_spec(ExportFormat f, const ResolvedExport& r, const ExportOptions& o) {
    switch (f) {
        case ExportFormat::AutoRound:
        case ExportFormat::AutoRoundAutoGptq:
        case ExportFormat::AutoRoundAutoAwq:
        case ExportFormat::AutoRoundGptqModel: return export_detail::auto_round_spec(f, r, o);
        case ExportFormat::AutoGptq: return export_detail::gptq_spec(r, o);
        case ExportFormat::AutoAwq: return export_detail::awq_spec(r, o);
        case ExportFormat::Fake: return export_detail::fake_spec(r);
        case ExportFormat::GgufF32:
        case ExportFormat::GgufF16:
        case ExportFormat::GgufBF16:
        case ExportFormat::GgufQ4_0:
        case ExportFormat::GgufQ4_1:
        case ExportFormat::GgufQ8_0:
        case ExportFormat::GgufQ4_K_S:
        case ExportFormat::GgufQ4_K_M:
        case ExportFormat::GgufQ6_K: {
            FormatSpec s;  // written by export/gguf_export.cpp, not write_folder; validated in make_plan
            s.format = f;
            s.backend = std::string(export_format_name(f));
            return s;
        }
    }
    fail("export: unknown format");
}

// Everything validate_export checks, kept for the writer.
struct Plan {
    ResolvedExport resolved;
    std::vector<FormatSpec> specs;
    std::vector<fs::path> folders;
    fs::path model_dir;
};

Plan make_plan(const fs::path& source_dir, const TensorStore& src, const QuantizationConfig& qc,
               const QuantizedLayers& layers, const std::vector<ExportFormat>& formats, const ExportOptions& o) {
    check(!formats.empty(), "export: no format requested; choose from ", kSupportedFormats);
    for (size_t i = 0; i < formats.size(); ++i)
        for (size_t k = 0; k < i; ++k)
            check(formats[i] != formats[k], "export: format ", export_format_name(formats[i]), " was requested twice");
    const fs::path cfg = source_dir / "config.json";
    const nlohmann::json cj = read_json_file(cfg);
    check(cj.is_object(), cfg.string(), ": expected a JSON object");
    check(o.max_shard_bytes > 0, "export: the maximum shard size must be positive");

    Plan plan;
    plan.resolved = resolve(src, qc, layers);
    for (ExportFormat f : formats) {
        plan.specs.push_back(make_spec(f, plan.resolved, o));
        if (const auto ft = gguf_file_type_of(f)) {
            GgufExportOptions go;
            go.file_type = *ft;
            validate_gguf_export(source_dir, src, layers, go);
            // Qwen3-VL: the vision tower goes to an F16 mmproj file next to the language model's GGUF
            if (cj.contains("vision_config")) validate_gguf_mmproj(source_dir, src, GgufMmprojType::F16);
        }
    }

    const std::string model_name = o.model_name.empty() ? source_dir.string() : o.model_name;
    plan.model_dir = quantized_model_dir(o.output_dir, model_name, plan.resolved.qc);
    plan.folders = export_folders(plan.model_dir, formats, plan.resolved.qc);
    std::set<fs::path> seen;
    for (size_t i = 0; i < plan.folders.size(); ++i) {
        const fs::path& d = plan.folders[i];
        check(seen.insert(d.lexically_normal()).second, "export: formats ", export_format_name(formats[i]),
              " and another requested format would both be written to ", d.string(), "; request only one of them");
        std::error_code ec;
        if (fs::exists(d, ec)) {
            check(fs::is_directory(d, ec), "output ", d.string(), " exists and is not a folder; remove it or choose "
                  "another --output_dir");
            check(o.overwrite || fs::is_empty(d, ec), "output folder ", d.string(),
                  " already exists and is not empty; choose another output folder or pass --overwrite");
        }
    }
    return plan;
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    check(static_cast<bool>(f), "cannot create ", path.string(), " (check that the folder is writable)");
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    check(!f.fail(), "cannot write ", path.string(), " (is the disk full?)");
}

// Copies a file byte for byte; the copy is made owner-writable (model folders are often read-only, and
// copy_file would carry that over, unlike transformers' save_pretrained, which writes fresh files).
void copy_side_file(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
    check(!ec, "cannot copy ", from.string(), " to ", to.string(), ": ", ec.message());
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add, ec);
    check(!ec, "cannot make ", to.string(), " writable: ", ec.message());
}

std::vector<uint8_t> raw_bytes(const TensorInfo& t) { return std::vector<uint8_t>(t.data, t.data + t.nbytes); }

// float32 values -> bytes of `dt` (BF16/F16 round to nearest even, as torch's .to()).
std::vector<uint8_t> encode_floats(const std::vector<float>& v, DType dt, const std::string& name) {
    std::vector<uint8_t> b(v.size() * dtype_size(dt));
    if (dt == DType::F32) {
        std::memcpy(b.data(), v.data(), b.size());
        return b;
    }
    check(dt == DType::BF16 || dt == DType::F16, "tensor ", name, ": cannot write ", dtype_name(dt));
    for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = dt == DType::BF16 ? float_to_bf16(v[i]) : float_to_fp16(v[i]);
        if (dt == DType::F16 && (h & 0x7c00u) == 0x7c00u && std::isfinite(v[i]))
            fail("tensor ", name, ": value ", v[i], " at index ", i, " overflows float16");
        std::memcpy(b.data() + 2 * i, &h, 2);
    }
    return b;
}

// Writes one format into `dir` (the AtomicDir's temporary folder); returns the file names written.
std::vector<std::string> write_folder(const FormatSpec& spec, const ResolvedExport& r, const fs::path& source_dir,
                                      const fs::path& dir, const ExportOptions& o) {
    const TensorStore& src = *r.source;
    const QuantizedLayers& layers = *r.layers;
    std::vector<std::string> files;
    {
        SafetensorsWriter w;
        for (const std::string& name : src.names()) {  // sorted, as transformers' save_pretrained
            const TensorInfo& t = src.get(name);
            if (ends_with(name, ".weight")) {
                const auto it = layers.find(name.substr(0, name.size() - 7));
                if (it != layers.end()) {
                    if (spec.pack) {
                        spec.pack(it->second).add_to(w, it->first);  // qweight/qzeros/scales[/g_idx] replace .weight
                    } else {
                        w.add(name, t.dtype, t.shape, encode_floats(it->second.dequantize(), t.dtype, name));
                    }
                    continue;
                }
            }
            if (spec.pack && ends_with(name, ".bias") && layers.count(name.substr(0, name.size() - 5))) {
                std::vector<float> b(static_cast<size_t>(t.numel()));
                src.load_f32_into(name, b);
                w.add(name, DType::F16, t.shape, encode_floats(b, DType::F16, name));  // packed layers: bias fp16
                continue;
            }
            w.add(name, t.dtype, t.shape, raw_bytes(t));
        }
        files = w.write_sharded(dir, o.max_shard_bytes, "model");
    }

    // config.json: the source keys (sorted, as transformers writes them) + quantization_config.
    nlohmann::json cfg = read_json_file(source_dir / "config.json");
    const bool had_qc = cfg.contains("quantization_config");
    cfg.erase("quantization_config");
    if (spec.quantization_config) cfg["quantization_config"] = nlohmann::json::parse(spec.quantization_config->dump());
    if (spec.fp16_config_dtype) {
        if (cfg.contains("dtype")) cfg["dtype"] = "float16";
        cfg["torch_dtype"] = "float16";
    }
    if (!spec.quantization_config && !spec.fp16_config_dtype && !had_qc) {
        copy_side_file(source_dir / "config.json", dir / "config.json");  // fake: the source file as is
    } else {
        write_text(dir / "config.json", cfg.dump(2) + "\n");
    }
    files.push_back("config.json");
    if (spec.quantization_config) {
        const std::string text = spec.quantization_config->dump(2) + "\n";
        write_text(dir / "quantization_config.json", text);
        files.push_back("quantization_config.json");
        if (spec.write_quantize_config_json) {
            write_text(dir / "quantize_config.json", text);
            files.push_back("quantize_config.json");
        }
    }

    // Tokenizer, chat template, generation and processor files; custom modelling code (*.py).
    std::vector<std::string> side(std::begin(kSideFiles), std::end(kSideFiles));
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(source_dir, ec))
        if (e.is_regular_file() && e.path().extension() == ".py") side.push_back(e.path().filename().string());
    for (const auto& f : side) {
        const fs::path from = source_dir / f;
        if (!fs::is_regular_file(from, ec)) continue;
        copy_side_file(from, dir / f);
        files.push_back(f);
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

// ---- format names ---------------------------------------------------------------------------------------

ExportFormat parse_export_format(std::string_view name) {
    std::string s(name);
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "auto_round") return ExportFormat::AutoRound;
    if (s == "auto_round:auto_gptq" || s == "auto_round:gptq") return ExportFormat::AutoRoundAutoGptq;
    if (s == "auto_round:auto_awq" || s == "auto_round:awq") return ExportFormat::AutoRoundAutoAwq;
    if (s == "auto_round:gptqmodel") return ExportFormat::AutoRoundGptqModel;
    if (s == "auto_gptq") return ExportFormat::AutoGptq;
    if (s == "auto_awq") return ExportFormat::AutoAwq;
    if (s == "fake") return ExportFormat::Fake;
    if (s.rfind("gguf:", 0) == 0) {
        const GgufFileType t = parse_gguf_file_type(s.substr(5));
        for (const auto& [f, g] : kGgufFormats)
            if (g == t) return f;
    }
    fail("--format: '", std::string(name), "' is not supported; choose from ", kSupportedFormats);
}

std::vector<ExportFormat> parse_export_formats(std::string_view list) {
    std::vector<ExportFormat> out;
    size_t start = 0;
    while (start <= list.size()) {
        size_t end = list.find(',', start);
        if (end == std::string_view::npos) end = list.size();
        const std::string_view part = list.substr(start, end - start);
        if (part.find_first_not_of(" \t") != std::string_view::npos) {
            const ExportFormat f = parse_export_format(part);
            if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
        }
        start = end + 1;
    }
    check(!out.empty(), "--format: no format given; choose from ", kSupportedFormats);
    return out;
}

std::string_view export_format_name(ExportFormat f) {
    switch (f) {
        case ExportFormat::AutoRound: return "auto_round";
        case ExportFormat::AutoRoundAutoGptq: return "auto_round:auto_gptq";
        case ExportFormat::AutoRoundAutoAwq: return "auto_round:auto_awq";
        case ExportFormat::AutoRoundGptqModel: return "auto_round:gptqmodel";
        case ExportFormat::AutoGptq: return "auto_gptq";
        case ExportFormat::AutoAwq: return "auto_awq";
        case ExportFormat::Fake: return "fake";
        case ExportFormat::GgufF32: return "gguf:f32";
        case ExportFormat::GgufF16: return "gguf:f16";
        case ExportFormat::GgufBF16: return "gguf:bf16";
        case ExportFormat::GgufQ4_0: return "gguf:q4_0";
        case ExportFormat::GgufQ4_1: return "gguf:q4_1";
        case ExportFormat::GgufQ8_0: return "gguf:q8_0";
        case ExportFormat::GgufQ4_K_S: return "gguf:q4_k_s";
        case ExportFormat::GgufQ4_K_M: return "gguf:q4_k_m";
        case ExportFormat::GgufQ6_K: return "gguf:q6_k";
    }
    return "fake";
}

std::optional<LayerScheme> gguf_tuned_scheme(ExportFormat f) {
    const std::optional<GgufFileType> ft = gguf_file_type_of(f);
    if (!ft) return std::nullopt;
    // the file type's base block type (Q4_K for q4_k_s / q4_k_m); nullopt for f32 / f16 / bf16
    return gguf_block_scheme(gguf_tensor_type(*ft, "blk.0.attn_q.weight", 0, 1, true, gguf::kQKK));
}

std::optional<LayerScheme> gguf_layer_scheme(ExportFormat f, const std::string& layer, int n_layers, bool has_output,
                                             int64_t in) {
    const std::optional<GgufFileType> ft = gguf_file_type_of(f);
    if (!ft) return std::nullopt;
    const std::optional<std::string> g = gguf_tensor_name(layer + ".weight");
    if (!g) return std::nullopt;
    const int idx = g->rfind("blk.", 0) == 0 ? std::atoi(g->c_str() + 4) : -1;
    return gguf_block_scheme(gguf_tensor_type(*ft, *g, idx, n_layers, has_output, in));
}

std::optional<GgufFileType> gguf_file_type_of(ExportFormat f) {
    for (const auto& [e, g] : kGgufFormats)
        if (e == f) return g;
    return std::nullopt;
}

AutoRoundPacking resolve_auto_round_packing(ExportFormat f, const QuantizationConfig& qc) {
    switch (f) {
        case ExportFormat::AutoRoundAutoGptq: return AutoRoundPacking::AutoGptq;
        case ExportFormat::AutoRoundAutoAwq: return AutoRoundPacking::AutoAwq;
        case ExportFormat::AutoRoundGptqModel: return AutoRoundPacking::GptqModel;
        default: break;
    }
    // auto-round's AutoRoundFormat: sym int -> auto_gptq packing; asym 4-bit with every configured layer
    // 4-bit or unquantized -> auto_awq; other asym -> plain auto_round packing (true zeros).
    if (qc.sym) return AutoRoundPacking::AutoGptq;
    if (qc.bits != 4) return AutoRoundPacking::Plain;
    for (const auto& [name, s] : qc.layer_overrides)
        if (s.quantized() && s.bits != 4) return AutoRoundPacking::Plain;
    for (const auto& p : qc.pattern_overrides)
        if (p.scheme.quantized() && p.scheme.bits != 4) return AutoRoundPacking::Plain;
    return AutoRoundPacking::AutoAwq;
}

std::string export_backend_name(ExportFormat f, const QuantizationConfig& qc) {
    switch (f) {
        case ExportFormat::AutoGptq: return "auto_gptq";
        case ExportFormat::AutoAwq: return "auto_awq";
        case ExportFormat::Fake: return "fake";
        default:
            if (gguf_file_type_of(f)) return std::string(export_format_name(f));  // "gguf:q4_k_m"
            return std::string(auto_round_packing_name(resolve_auto_round_packing(f, qc)));
    }
}

// ---- folder names ---------------------------------------------------------------------------------------

fs::path quantized_model_dir(const fs::path& output_dir, const std::string& model_name_or_path,
                             const QuantizationConfig& qc, int act_bits, const std::string& act_data_type) {
    std::string name = model_name_or_path;
    while (!name.empty() && name.back() == '/') name.pop_back();
    const size_t slash = name.find_last_of('/');
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    const size_t b = base.find_first_not_of('.');
    const std::string stripped = b == std::string::npos ? "" : base.substr(b, base.find_last_not_of('.') - b + 1);

    const std::string suffix = qc.group_size <= 0
                                   ? (act_data_type.find("fp") != std::string::npos ? "afp" : "a") + std::to_string(act_bits)
                                   : "g" + std::to_string(qc.group_size);
    const std::string w = "w" + std::to_string(qc.bits) + suffix;
    if (stripped.empty()) return output_dir / w;
    std::string prefix;
    if (qc.data_type.find("int") == std::string::npos || qc.data_type.find("mx") != std::string::npos) {
        for (char c : qc.data_type)
            if (c != '_') prefix += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return output_dir / (base + (prefix.empty() ? "" : "-" + prefix) + "-" + w);
}

std::string export_subfolder_name(ExportFormat f, const QuantizationConfig& qc) {
    std::string s = export_backend_name(f, qc);
    std::replace(s.begin(), s.end(), ':', '-');
    std::replace(s.begin(), s.end(), '_', '-');
    return s;
}

std::vector<fs::path> export_folders(const fs::path& model_dir, const std::vector<ExportFormat>& formats,
                                     const QuantizationConfig& qc) {
    std::vector<fs::path> out;
    for (ExportFormat f : formats)
        out.push_back(formats.size() == 1 ? model_dir : model_dir / export_subfolder_name(f, qc));
    return out;
}

// ---- shared layer checks ----------------------------------------------------------------------------------

namespace export_detail {

void check_gptq_storable(const std::string& name, const QuantizedTensor& q, bool v1_zeros, const std::string& format) {
    const std::string l = name + " " + shape_str(q.out_features, q.in_features);
    check(!q.double_quant(), format, " cannot store layer ", l, ": it is tuned in a GGUF k-quant data type (",
          q.sym ? "int_sym_dq" : "int_asym_dq", "); the formats that can store it are gguf:* and fake");
    check(q.float_zeros.empty(), format, " cannot store layer ", l,
          ": it has floating-point zero points; the only format that can is fake");
    check(q.bits == 2 || q.bits == 3 || q.bits == 4 || q.bits == 8, format, " cannot store layer ", l, ": it is ",
          q.bits, "-bit and the GPTQ layout holds 2, 3, 4 or 8-bit codes; the only format that can is fake");
    check(q.in_features % 32 == 0 && q.out_features % 32 == 0, format, " cannot store layer ", l,
          ": GPTQ kernels need in_features and out_features to be multiples of 32 (auto-round keeps such layers "
          "unquantized); keep it in full precision, or use fake");
    // The literal group_size (not the clamped group length): loaders check in_features % group_size.
    const int64_t G = q.group_size > 0 ? q.group_size : q.in_features;
    check(q.in_features % G == 0, format, " cannot store layer ", l, ": in_features ", q.in_features,
          " is not a multiple of group_size ", q.group_size,
          " and every runtime needs whole groups; use a group_size that divides it, or fake");
    if (!v1_zeros) return;
    const int64_t ng = q.n_groups();
    for (size_t i = 0; i < q.zeros.size(); ++i)
        if (q.zeros[i] < 1)
            fail(format, " cannot store layer ", l, ": zero point ", q.zeros[i], " at row ", i / ng, ", group ", i % ng,
                 " (GPTQ v1 stores z - 1, which must not be negative; checkpoint-formats.md §1.4); formats that can: "
                 "auto_round (asymmetric models use auto_round:auto_awq packing for 4 bits, plain auto_round "
                 "otherwise), auto_round:gptqmodel, auto_awq (4-bit), fake");
}

void check_awq_storable(const std::string& name, const QuantizedTensor& q, const std::string& format) {
    const std::string l = name + " " + shape_str(q.out_features, q.in_features);
    check(!q.double_quant(), format, " cannot store layer ", l, ": it is tuned in a GGUF k-quant data type (",
          q.sym ? "int_sym_dq" : "int_asym_dq", "); the formats that can store it are gguf:* and fake");
    check(q.float_zeros.empty(), format, " cannot store layer ", l,
          ": it has floating-point zero points; the only format that can is fake");
    check(q.bits == 4, format, " stores 4-bit weights only, layer ", l, " is ", q.bits,
          "-bit; formats that can store it: auto_round, auto_gptq, fake");
    check(q.out_features % 8 == 0, format, " cannot store layer ", l,
          ": AWQ packs 8 output channels per word, out_features must be a multiple of 8; formats that can: "
          "auto_round, auto_gptq (if in and out are multiples of 32), fake");
    const int64_t G = q.group_size > 0 ? q.group_size : q.in_features;
    check(q.in_features % G == 0, format, " cannot store layer ", l, ": in_features ", q.in_features,
          " is not a multiple of group_size ", q.group_size,
          " and AWQ (like every runtime) needs whole groups; use a group_size that divides it, or fake");
    const int64_t ng = q.n_groups();
    for (size_t i = 0; i < q.zeros.size(); ++i)
        if (q.zeros[i] > 15)
            fail(format, " cannot store layer ", l, ": zero point ", q.zeros[i], " at row ", i / ng, ", group ", i % ng,
                 " does not fit AWQ's 4-bit field; formats that can: auto_round:auto_gptq, auto_gptq (they store "
                 "z - 1), fake");
}

}  // namespace export_detail

// ---- export -----------------------------------------------------------------------------------------------

void validate_export(const fs::path& source_dir, const TensorStore& source, const QuantizationConfig& qc,
                     const QuantizedLayers& layers, const std::vector<ExportFormat>& formats, const ExportOptions& o) {
    (void)make_plan(source_dir, source, qc, layers, formats, o);
}

std::vector<ExportResult> export_model(const fs::path& source_dir, const TensorStore& source,
                                       const QuantizationConfig& qc, const QuantizedLayers& layers,
                                       const std::vector<ExportFormat>& formats, const ExportOptions& o) {
    const Plan plan = make_plan(source_dir, source, qc, layers, formats, o);

    // With several formats the model folder is their common parent; remove it again if we created it and
    // the export fails, so that a failed export leaves nothing behind.
    std::error_code ec;
    const bool created_parent = formats.size() > 1 && !fs::exists(plan.model_dir, ec);
    struct ParentGuard {
        fs::path dir;
        bool armed;
        ~ParentGuard() {
            std::error_code e;
            if (armed && fs::is_directory(dir, e) && fs::is_empty(dir, e)) fs::remove(dir, e);
        }
    } guard{plan.model_dir, created_parent};

    // Write every folder into its temporary sibling first; commit them only when all are complete.
    std::vector<std::unique_ptr<AtomicDir>> dirs;
    std::vector<ExportResult> results;
    for (size_t i = 0; i < plan.specs.size(); ++i) {
        dirs.push_back(std::make_unique<AtomicDir>(plan.folders[i], o.overwrite));
        const fs::path tmp = dirs.back()->path();
        ExportResult res{plan.specs[i].format, plan.specs[i].backend, plan.folders[i], {}};
        if (const auto ft = gguf_file_type_of(plan.specs[i].format)) {
            GgufExportOptions go;
            go.file_type = *ft;
            go.model_name = o.model_name.empty() ? source_dir.string() : o.model_name;
            const std::string file = gguf_file_name(go.model_name, *ft);
            (void)write_gguf_model(source_dir, source, layers, go, tmp / file);
            res.files = {file};
            if (read_json_file(source_dir / "config.json").contains("vision_config")) {
                const std::string mm = gguf_mmproj_file_name(go.model_name, GgufMmprojType::F16);
                (void)write_gguf_mmproj(source_dir, source, GgufMmprojType::F16, go.model_name, tmp / mm);
                res.files.push_back(mm);
            }
        } else {
            res.files = write_folder(plan.specs[i], plan.resolved, source_dir, tmp, o);
        }
        if (o.card.write) {  // the model card (export/model_card.h), last: it names the files above
            const ResolvedExport& r = plan.resolved;
            write_text(tmp / "README.md", render_model_card(model_card_info(
                source_dir, source, o.model_name, r.qc, r.skipped_in_block, r.unquantized_outside,
                export_format_name(plan.specs[i].format), plan.specs[i].backend,
                plan.folders[i].lexically_normal().lexically_relative(o.output_dir.lexically_normal()), res.files, o.card)));
            res.files.push_back("README.md");
        }
        if (o.before_commit) o.before_commit(tmp);
        results.push_back(std::move(res));
    }
    for (auto& d : dirs) d->commit();
    guard.armed = false;
    return results;
}

}  // namespace autoround
