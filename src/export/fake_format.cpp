// export/fake_format.cpp — the "fake" export: the quantize-dequantize (QDQ) weights w = (q - z) * s of every
// quantized layer, stored as a plain `<name>.weight` [out, in] in the source tensor's dtype (bf16 for Qwen3),
// everything else copied. Any scheme can be written (partial groups, odd widths, float zero points).
// Like auto-round (autoround-algorithm.md §5.4: "for weight-only int schemes no quantization_config is
// written"), config.json carries no quantization_config and there is no quantization_config.json: the folder
// is an ordinary full-precision checkpoint that reproduces the quantized model's numerics.
#include "export/export_formats.h"

namespace autoround::export_detail {

FormatSpec fake_spec(const ResolvedExport& r) {
    (void)r;  // every layer that validated as a QuantizedTensor can be dequantized
    FormatSpec s;
    s.format = ExportFormat::Fake;
    s.backend = "fake";
    return s;
}

}  // namespace autoround::export_detail
