// quant/quantized_loader.cpp — see quantized_loader.h. The format decision (which from_* and which
// zero convention) is made here from the parsed quantization_config; docs/checkpoint-formats.md §1.4
// (GPTQ v1 stores z - 1, v2 stores z), §2.3 (AWQ stores z), §3.1/§3.3 (auto-round packing_format).
#include "quant/quantized_loader.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"

namespace autoround {

std::optional<QuantizationConfig> load_quantization_config(const std::filesystem::path& model_dir) {
    const std::filesystem::path path = model_dir / "config.json";
    (void)read_json_file(path);  // missing / unreadable / invalid JSON: its error names the file and position
    // Parsed again keeping key order: regex rules in `dynamic` / `extra_config` apply first match first.
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(text.str());
    check(cfg.is_object(), path.string(), ": expected a JSON object");
    auto it = cfg.find("quantization_config");
    if (it == cfg.end() || it->is_null()) return std::nullopt;
    return parse_quantization_config(*it, path.string() + " quantization_config");
}

std::optional<QuantizedTensor> load_linear_quantized(const TensorStore& st, const std::string& prefix,
                                                     const QuantizationConfig& qc, int64_t out, int64_t in) {
    if (st.has(prefix + ".weight")) return std::nullopt;
    check(st.has(prefix + ".qweight"), "layer ", prefix, ": the checkpoint has neither ", prefix, ".weight nor ",
          prefix, ".qweight");
    const LayerScheme s = qc.scheme_for(prefix);
    check(s.quantized(), "layer ", prefix, " is stored packed (", prefix, ".qweight) but the quantization_config "
          "marks it unquantized (bits ", s.bits, "); the config does not match the weights");

    QuantizedTensor q;
    switch (qc.method) {
        case QuantMethod::Gptq:
            q = from_gptq(st.tensors(), prefix, s.quant_scheme(), qc.gptq_zeros);
            break;
        case QuantMethod::Awq:
            q = from_awq(st.tensors(), prefix, s.quant_scheme());
            break;
        case QuantMethod::AutoRound:
            q = from_auto_round(st.tensors(), prefix, s.quant_scheme(), qc.packing);
            break;
    }
    check(q.out_features == out && q.in_features == in, "layer ", prefix, ": packed tensors hold a [",
          q.out_features, ", ", q.in_features, "] weight, the model expects [", out, ", ", in, "]");
    return q;
}

std::optional<std::vector<float>> load_linear_dequantized(const TensorStore& st, const std::string& prefix,
                                                          const QuantizationConfig& qc, int64_t out, int64_t in) {
    std::optional<QuantizedTensor> q = load_linear_quantized(st, prefix, qc, out, in);
    if (!q) return std::nullopt;
    return q->dequantize();
}

}  // namespace autoround
