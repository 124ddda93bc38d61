// export/gptq_format.cpp — the "auto_gptq" export (quant_method "gptq"), readable by AutoGPTQ, GPTQModel,
// transformers (optimum) and vLLM (GPTQ-Marlin for 4/8-bit sym).
//
// Layout (docs/checkpoint-formats.md §1.1–§1.6): per quantized Linear, `<name>.weight` [out, in] becomes
//   qweight I32 [in*bits/32, out], qzeros I32 [ng, out*bits/32] (z - 1 for checkpoint_format "gptq" = v1),
//   scales F16 [ng, out], g_idx I32 [in] = k / group (desc_act false), bias F16 if present.
// quantization_config (autoround-algorithm.md §5.4, peer exp-w4g128-auto_gptq): auto-round's keys plus an
// explicit checkpoint_format; `dynamic` "-:"/"+:" rules for skipped / differing layers,
// modules_in_block_to_quantize when some in-block Linear stays unquantized, block_name_to_quantize when the
// blocks are not a list optimum detects by itself (§1.9). Also written to quantize_config.json (§1.8), which
// AutoGPTQ/GPTQModel read first. config.json torch_dtype "float16" as auto-round does (vLLM's non-Marlin GPTQ
// kernels are fp16-only); unquantized tensors keep their dtype.
#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.h"
#include "export/export_formats.h"

namespace autoround::export_detail {

namespace {

// "model.layers.3.self_attn.q_proj" under block list "model.layers" -> "self_attn.q_proj".
std::string name_inside_block(const std::string& name, const std::string& block) {
    size_t p = block.size() + 1;
    while (p < name.size() && std::isdigit(static_cast<unsigned char>(name[p]))) ++p;
    return (p < name.size() && name[p] == '.') ? name.substr(p + 1) : name.substr(block.size() + 1);
}

}  // namespace

FormatSpec gptq_spec(const ResolvedExport& r, const ExportOptions& o) {
    QuantizationConfig qc = r.qc;
    const bool v1 = qc.gptq_zeros == GptqZeros::V1;
    for (const auto& [name, q] : *r.layers) {
        if (!is_lm_head_name(name) && !qc.block_name_to_quantize.empty() && qc.block_of(name).empty()) {
            std::string blocks;
            for (const auto& b : qc.block_name_to_quantize) blocks += (blocks.empty() ? "" : ", ") + b;
            fail("auto_gptq cannot describe quantized layer ", name, ": it lies outside the quantized blocks (", blocks,
                 ") and GPTQ loaders (optimum/transformers) only quantize layers inside block_name_to_quantize and "
                 "lm_head; formats that can: auto_round (extra_config), fake");
        }
        check_gptq_storable(name, q, v1, "auto_gptq");
    }

    // Some in-block Linear stays full precision: list the quantized names per block list (optimum keeps
    // only names ending with an entry; vLLM checks substrings), as auto-round does.
    if (!r.skipped_in_block.empty() && qc.modules_in_block_to_quantize.empty()) {
        for (const auto& block : qc.block_name_to_quantize) {
            std::set<std::string> names;
            for (const auto& [name, q] : *r.layers)
                if (qc.block_of(name) == block) names.insert(name_inside_block(name, block));
            if (!names.empty()) qc.modules_in_block_to_quantize.emplace_back(names.begin(), names.end());
        }
    }
    // Full-precision Linears outside the blocks (e.g. a vision tower): GPTQModel and vLLM quantize every
    // Linear unless a "-:" dynamic rule skips it (§1.9).
    for (const auto& m : r.unquantized_outside) {
        LayerScheme skip = qc.global();
        skip.bits = 16;
        skip.data_type = "float";
        qc.pattern_overrides.push_back({".*" + regex_escape(m), skip, true});  // re.match, any root
    }

    FormatSpec s;
    s.format = ExportFormat::AutoGptq;
    s.backend = "auto_gptq";
    const GptqZeros zeros = qc.gptq_zeros;
    s.pack = [zeros](const QuantizedTensor& q) { return to_gptq(q, GptqOptions{zeros, true, DType::F16}); };
    s.quantization_config = quantization_config_json(qc, QuantMethod::Gptq);
    s.write_quantize_config_json = true;
    s.fp16_config_dtype = o.fp16_config_dtype;
    return s;
}

}  // namespace autoround::export_detail
