// export/auto_round_format.cpp — the auto-round native format (quant_method "auto-round").
//
// Layout: the packing_format picks one of the existing layouts (docs/checkpoint-formats.md §3.1, §3.3):
//   auto_round:auto_gptq  GPTQ layout, zeros stored as z - 1 (v1), no g_idx   (sym int; auto-round's default)
//   auto_round:auto_awq   AWQ GEMM layout, true zeros                         (asym 4-bit, all layers 4/16-bit)
//   auto_round            GPTQ layout, true zeros, no g_idx                   (asym 2/3/8-bit)
//   auto_round:gptqmodel  GPTQ layout, true zeros, with g_idx                 (only on request)
// Per layer, `<name>.weight` [out, in] becomes qweight I32 + qzeros I32 + scales F16 (autoround-algorithm.md §5.3).
// quantization_config: global scheme, block_name_to_quantize, packing_format, extra_config for layers that
// differ (bits 16 = unquantized; full scheme for quantized layers outside the blocks, e.g. lm_head) (§5.4).
// config.json keeps the source dtype, except AWQ packing, for which auto-round forces float16 (§5.2).
#include "core/error.h"
#include "export/export_formats.h"

namespace autoround::export_detail {

FormatSpec auto_round_spec(ExportFormat f, const ResolvedExport& r, const ExportOptions& o) {
    QuantizationConfig qc = r.qc;
    qc.packing = resolve_auto_round_packing(f, r.qc);
    const AutoRoundPacking packing = qc.packing;
    const std::string backend = std::string(auto_round_packing_name(packing));

    const bool awq_layout = packing == AutoRoundPacking::AutoAwq;
    for (const auto& [name, q] : *r.layers) {
        if (awq_layout) {
            check_awq_storable(name, q, backend);
        } else {
            check_gptq_storable(name, q, packing == AutoRoundPacking::AutoGptq, backend);
        }
    }

    FormatSpec s;
    s.format = f;
    s.backend = backend;
    s.pack = [packing](const QuantizedTensor& q) { return to_auto_round(q, packing); };
    s.quantization_config = quantization_config_json(qc, QuantMethod::AutoRound);
    s.fp16_config_dtype = awq_layout && o.fp16_config_dtype;
    return s;
}

}  // namespace autoround::export_detail
