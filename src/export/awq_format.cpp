// export/awq_format.cpp — the "auto_awq" export (quant_method "awq", version "gemm"), readable by AutoAWQ,
// transformers and vLLM (AWQ-Marlin when zero_point is true).
//
// Layout (docs/checkpoint-formats.md §2.1–§2.3): per quantized Linear, `<name>.weight` [out, in] becomes
//   qweight I32 [in, out/8] (interleaved order 0,2,4,6,1,3,5,7), qzeros I32 [ng, out/8] (true zeros; 8 for
//   sym), scales F16 [ng, out], bias F16 if present. No g_idx.
// AWQ is 4-bit only and its config has ONE group_size and no per-layer overrides besides
// modules_to_not_convert (substring rules), so layers with another bit width or group size, a quantized
// lm_head, or anything else it cannot describe are refused with the formats that can store them.
// quantization_config: auto-round's keys (peer exp-w4g128-auto_awq) but "zero_point": true even for sym
// models (see quant/quantization_config.cpp; §2.4, §4.3). config.json torch_dtype "float16" as auto-round does.
#include "core/error.h"
#include "export/export_formats.h"

namespace autoround::export_detail {

FormatSpec awq_spec(const ResolvedExport& r, const ExportOptions& o) {
    QuantizationConfig qc = r.qc;
    check(qc.bits == 4, "auto_awq stores 4-bit weights only; the quantization config asks for bits ", qc.bits,
          ": formats that can store it: auto_round, auto_gptq, fake");
    for (const auto& [name, q] : *r.layers) {
        check_awq_storable(name, q, "auto_awq");
        if (is_lm_head_name(name))
            fail("auto_awq cannot store quantized layer ", name, ": AWQ runtimes never quantize lm_head; formats that "
                 "can: auto_round, auto_gptq (lm_head: true), fake");
        check(q.group_size == qc.group_size, "auto_awq cannot store layer ", name, " with group_size ", q.group_size,
              ": AWQ has one group_size for the whole model (", qc.group_size,
              ") and no per-layer overrides; formats that can: auto_round, auto_gptq, fake");
    }
    // Full-precision Linears outside the blocks (e.g. a vision tower) must be named: transformers/AutoAWQ
    // replace every other Linear (auto-round adds the blocks it did not quantize the same way).
    for (const auto& m : r.unquantized_outside) qc.modules_to_not_convert.push_back(m);

    FormatSpec s;
    s.format = ExportFormat::AutoAwq;
    s.backend = "auto_awq";
    s.pack = [](const QuantizedTensor& q) { return to_awq(q, DType::F16); };
    s.quantization_config = quantization_config_json(qc, QuantMethod::Awq);
    s.fp16_config_dtype = o.fp16_config_dtype;
    return s;
}

}  // namespace autoround::export_detail
