// cli/cmd_quantize.cpp — `autoround quantize --model DIR --output_dir OUT`: AutoRound (SignRound) weight-only
// quantization of a Qwen3-family checkpoint on CPU, exported to one folder per --format.
//
// Flags keep the names (and aliases) of Intel's Python `auto-round` CLI (autoround-algorithm.md §6); flags that
// only matter for PyTorch on GPUs are accepted and explained. Order of work, so that bad input fails before
// any expensive step: parse + recipe -> load the model (mmap) -> layer selection (quant/scheme.h) ->
// export validation with placeholder layers (formats that cannot store a layer, existing output folders) ->
// calibration (quant/calibration.h) -> tuning (quant/signround_tuner.h) -> export (export/exporter.h) ->
// quantize_report.json written into every output folder -> summary table on stdout.
// Output folders (§5.2): <output_dir>/<model basename>-w<bits>g<group_size>[/<format subfolder> when several].
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/progress_bar.h"
#include "export/exporter.h"
#include "io/model_config.h"
#include "model/qwen3_model.h"
#include "quant/calibration.h"
#include "quant/gguf_double_quant.h"
#include "quant/rtn.h"
#include "quant/scheme.h"
#include "quant/signround_tuner.h"
#include "quant/tuning_checkpoint.h"
#include "quant/multimodal_calibration.h"
#include "quant/vision_calibration.h"
#include "quant/vision_tuner.h"
#include "model/qwen3_vl_model.h"
#include "export/model_card.h"
#include "hub/hub_settings.h"
#include "hub/hub_upload.h"
#include "ops/cuda/device_info.h"
#include "text/bpe_tokenizer.h"

namespace autoround::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct QuantizeArgs {
    std::string model, model_pos, output_dir = "./tmp_autoround";
    std::optional<std::string> scheme;  // default W4A16 (or the GGUF format's own data type)
    std::string data_type;
    std::optional<int> bits;
    std::optional<int64_t> group_size;
    bool sym = false, asym = false;
    std::optional<int> iters, nsamples, seqlen, batch_size;
    int gradient_accumulate_steps = 1;
    std::optional<double> lr, minmax_lr;
    std::string format = "auto_round";
    std::optional<std::string> dataset;
    std::string dataset_field = "text";
    uint64_t seed = 42;
    std::string device = "cpu";
    std::string gpu_precision = "fp32";
    bool low_gpu_mem_usage = false, enable_torch_compile = false, disable_torch_compile = false, fp8_backward = false;
    bool quant_nontext_module = false;
    std::string image_dataset;  // --quant_nontext_module: folder of calibration images
    int image_size = 448;
    bool disable_opt_rtn = false, enable_opt_rtn = false, not_use_best_mse = false;
    int dynamic_max_gap = -1;
    bool enable_minmax_tuning = false, disable_minmax_tuning = false;
    bool enable_quanted_input = false, disable_quanted_input = false;
    int nblocks = 1;
    std::string to_quant_block_names, ignore_layers, layer_config;
    bool quant_lm_head = false;
    std::string recipe = "default";
    bool overwrite = false, quiet = false, no_resume = false;
    std::string push_to_hub;  // "user/name-{format}": push every exported folder
    int threads = 0;
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mb() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

std::string fmt(double v, const char* f = "%.4g") {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// Recipe values for the flags the user left unset (§3.3).
struct Recipe {
    int iters, nsamples, seqlen, batch_size;
    std::optional<double> lr;
    bool disable_opt_rtn;
};
Recipe recipe_of(const std::string& name) {
    if (name == "default" || name == "auto-round") return {200, 128, 2048, 8, std::nullopt, false};
    if (name == "best" || name == "auto-round-best") return {1000, 512, 2048, 8, std::nullopt, false};
    if (name == "light" || name == "auto-round-light") return {50, 128, 2048, 8, 5e-3, false};
    if (name == "rtn" || name == "auto-round-rtn") return {0, 1, 2048, 8, std::nullopt, true};
    if (name == "opt-rtn" || name == "auto-round-opt-rtn") return {0, 128, 2048, 8, std::nullopt, false};
    fail("--recipe '", name, "' is not known; choose default, best, light, rtn or opt-rtn");
}

// Placeholder tensors with the planned shapes and schemes: lets validate_export check every format against
// every layer before any tuning (a zero point of 2^(bits-1) is storable by every format).
QuantizedLayers placeholder_layers(const QuantPlan& plan) {
    QuantizedLayers out;
    for (const auto& l : plan.all_layers()) {
        QuantizedTensor q;
        q.name = l.name;
        q.bits = l.scheme.bits;
        q.group_size = l.scheme.group_size;
        q.sym = l.scheme.sym;
        q.out_features = l.out;
        q.in_features = l.in;
        q.codes.assign(static_cast<size_t>(l.out * l.in), 0);
        q.scales.assign(static_cast<size_t>(l.out * q.n_groups()), 1e-3f);
        q.zeros.assign(q.scales.size(), 1 << (l.scheme.bits - 1));
        out.emplace(l.name, std::move(q));
    }
    return out;
}

// "Q4_K (int_asym_dq W4G32)" for a GGUF block scheme.
std::string gguf_scheme_label(const LayerScheme& s) {
    const std::optional<gguf::BlockType> t = gguf_block_type_of(s);
    return (t ? std::string(gguf::block_type_name(*t)) + " " : std::string()) + "(" + s.data_type + " W" +
           std::to_string(s.bits) + "G" + std::to_string(s.group_size) + (s.sym ? " sym" : " asym") + ")";
}

std::string scheme_label(const LayerScheme& s) {
    return "W" + std::to_string(s.bits) + "G" + std::to_string(s.group_size) + (s.sym ? " sym" : " asym");
}

int run_quantize(const QuantizeArgs& a) {
    const auto t_all = Clock::now();
    set_threads(a.threads);
    auto note = [&](const std::string& s) {
        if (!a.quiet) std::fprintf(stderr, "note: %s\n", s.c_str());
    };

    // ---- flags -------------------------------------------------------------------------------------------
    check(a.model.empty() || a.model_pos.empty() || a.model == a.model_pos, "give the model once (--model or MODEL)");
    const std::string model_arg = a.model.empty() ? a.model_pos : a.model;
    check(!model_arg.empty(), "--model is required: a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
    const fs::path dir = model_dir_arg(model_arg);
    std::string device = resolve_device(a.device);
    if (a.low_gpu_mem_usage && device == "cpu")
        note("--low_gpu_mem_usage has no effect on CPU: cached activations already live in host memory");
    if (a.disable_torch_compile) note("--disable_torch_compile has no effect: there is no PyTorch here");
    check(!(a.enable_torch_compile && a.disable_torch_compile), "--enable_torch_compile and --disable_torch_compile "
          "exclude each other");
    if (a.enable_torch_compile && device != "cuda")
        note("--enable_torch_compile has no effect on CPU (no PyTorch here; on --device cuda it means: capture one "
             "tuning iteration in a CUDA graph and replay it)");
    check(!(a.sym && a.asym), "--sym and --asym exclude each other");
    check(!(a.enable_minmax_tuning && a.disable_minmax_tuning), "--enable_minmax_tuning and --disable_minmax_tuning "
          "exclude each other");
    check(!(a.enable_quanted_input && a.disable_quanted_input), "--enable_quanted_input and --disable_quanted_input "
          "exclude each other");
    check(!(a.enable_opt_rtn && a.disable_opt_rtn), "--enable_opt_rtn and --disable_opt_rtn exclude each other");
    check(a.nblocks >= 1, "--nblocks must be >= 1 (the number of consecutive decoder blocks tuned jointly), got ",
          a.nblocks);
    if (a.nblocks > 1 && device == "cuda") {
        // the CUDA block engine tunes one block at a time: joint tuning of several blocks runs on the CPU
        note("--nblocks " + std::to_string(a.nblocks) + " runs on the CPU (the CUDA engine tunes one block at a "
             "time); using --device cpu");
        device = "cpu";
    }

    const Recipe rc = recipe_of(a.recipe);
    SignRoundOptions so;
    so.iters = a.iters.value_or(rc.iters);
    so.lr = a.lr ? a.lr : rc.lr;
    so.minmax_lr = a.minmax_lr;
    so.batch_size = a.batch_size.value_or(rc.batch_size);
    so.gradient_accumulate_steps = a.gradient_accumulate_steps;
    so.nblocks = a.nblocks;
    so.enable_minmax_tuning = !a.disable_minmax_tuning;
    so.enable_quanted_input = !a.disable_quanted_input;
    so.not_use_best_mse = a.not_use_best_mse;
    so.dynamic_max_gap = a.dynamic_max_gap;
    so.disable_opt_rtn = a.disable_opt_rtn || (!a.enable_opt_rtn && rc.disable_opt_rtn);
    so.seed = a.seed;
    so.progress = !a.quiet;
    so.cuda = device == "cuda";
    check(a.gpu_precision == "fp32" || a.gpu_precision == "bf16", "--gpu_precision ", a.gpu_precision,
          ": expected fp32 or bf16");
    so.cuda_bf16 = so.cuda && a.gpu_precision == "bf16";
    so.low_gpu_mem_usage = so.cuda && a.low_gpu_mem_usage;
    check(!a.fp8_backward || so.cuda_bf16, "--fp8_backward needs --device cuda --gpu_precision bf16");
    so.cuda_fp8_backward = a.fp8_backward;
    // CUDA graphs where they apply (bf16, activations on the GPU, one sub-batch per step); otherwise the same work
    // runs eagerly, and the note says why
    so.cuda_graphs = so.cuda && a.enable_torch_compile && so.cuda_bf16 && !so.low_gpu_mem_usage &&
                     so.gradient_accumulate_steps == 1;
    if (so.cuda && a.enable_torch_compile && !so.cuda_graphs)
        note("--enable_torch_compile: CUDA graphs need --gpu_precision bf16, the activations on the GPU (not "
             "--low_gpu_mem_usage) and one sub-batch per step (not --gradient_accumulate_steps > 1); tuning runs "
             "without them");
    check(so.iters >= 0, "--iters must be >= 0");
    check(so.batch_size > 0, "--batch_size must be positive");
    check(so.gradient_accumulate_steps > 0, "--gradient_accumulate_steps must be positive");
    int nsamples = a.nsamples.value_or(rc.nsamples);
    int seqlen = a.seqlen.value_or(rc.seqlen);
    check(nsamples > 0, "--nsamples must be positive");
    check(seqlen >= 2, "--seqlen must be at least 2");
    const std::vector<ExportFormat> formats = parse_export_formats(a.format);

    // ---- model and layer selection ------------------------------------------------------------------------
    const auto t_load = Clock::now();
    Qwen3Model loaded = Qwen3Model::load(dir);
    // --quant_nontext_module on Qwen3-VL: the vision tower too (image+text calibration runs it)
    std::optional<Qwen3VLModel> vl;
    if (a.quant_nontext_module && loaded.config().vision_language && !loaded.quantization())
        vl = Qwen3VLModel::from_text_model(std::move(loaded), dir);
    const Qwen3Model& model = vl ? vl->text() : loaded;
    if (model.config().vision_language && a.quant_nontext_module)
        for (ExportFormat f : formats)
            check(export_format_name(f).rfind("gguf", 0) != 0, "--format ", export_format_name(f), " with "
                  "--quant_nontext_module: a GGUF export writes the vision tower unquantized (F16 mmproj file, as "
                  "llama.cpp's multimodal tools load it); drop --quant_nontext_module, or use auto_round for a "
                  "quantized vision tower");
    const bool tune_vision = a.quant_nontext_module && model.config().vision_language;
    if (a.quant_nontext_module && !model.config().vision_language)
        note("--quant_nontext_module has no effect for text-only models");
    if (tune_vision)
        check(!a.image_dataset.empty(), "--quant_nontext_module needs --image_dataset DIR: a folder of .png/.jpg "
              "calibration images (optionally with <name>.txt captions) for the vision tower's blocks");
    else if (!a.image_dataset.empty())
        note("--image_dataset is only used with --quant_nontext_module on a vision-language model");
    check(!model.quantization().has_value(), "--model ", model_arg, " is already quantized (",
          quant_method_name(model.quantization()->method), "); quantize the original 16-bit checkpoint");
    SchemeOptions sch;
    sch.scheme = a.scheme.value_or("W4A16");
    sch.bits = a.bits;
    sch.group_size = a.group_size;
    if (a.sym) sch.sym = true;
    if (a.asym) sch.sym = false;
    if (!a.data_type.empty()) sch.data_type = a.data_type;
    sch.to_quant_block_names = a.to_quant_block_names;
    sch.ignore_layers = a.ignore_layers;
    sch.layer_config = a.layer_config;
    sch.quant_lm_head = a.quant_lm_head;
    // A GGUF-only run tunes, layer by layer, the data type of the block type its file stores (as auto-round's GGUF
    // presets do: q4_0 -> int sym group 32, q4_k_m -> int_asym_dq Q4_K with int_sym_dq Q6_K for the attn_v /
    // ffn_down that llama-quantize promotes), so the file holds the tuned integers. Explicit scheme flags win
    // (their codes are then re-quantized to the type at export).
    bool gguf_schemes = false;
    {
        std::optional<LayerScheme> gs;
        bool all_gguf = !formats.empty();
        for (ExportFormat f : formats) {
            if (!gguf_file_type_of(f)) all_gguf = false;
            if (!gs) gs = gguf_tuned_scheme(f);
        }
        const bool explicit_scheme = a.scheme || a.bits || a.group_size || a.sym || a.asym;
        if (all_gguf && gs && !explicit_scheme) {
            sch.bits = gs->bits;
            sch.group_size = gs->group_size;
            sch.sym = gs->sym;
            gguf_schemes = true;
        } else if (gs && explicit_scheme && !(resolve_global_scheme(sch) == *gs)) {
            note("--format " + a.format + ": the scheme given differs from the GGUF type's (" + gguf_scheme_label(*gs) +
                 "); the tuned weights are re-quantized to it at export");
        }
    }
    QuantPlan plan = plan_quantization(describe_model(model.config(), model.tensors(), tune_vision), sch);
    if (gguf_schemes) {
        const bool has_output = model.tensors().has("lm_head.weight");
        const int nl = model.config().num_hidden_layers;
        std::map<std::string, int> used;  // scheme label -> layers
        int disagree = 0;
        auto retune = [&](PlannedLayer& l) {
            std::optional<LayerScheme> pick;
            bool same = true;
            for (ExportFormat f : formats) {
                const std::optional<LayerScheme> s = gguf_layer_scheme(f, l.name, nl, has_output, l.in);
                if (!s) continue;
                if (pick && !(*pick == *s)) same = false;
                if (!pick) pick = s;
            }
            if (!pick) return;
            if (!same) ++disagree;
            l.scheme = *pick;
            ++used[gguf_scheme_label(*pick)];
        };
        for (PlannedBlock& b : plan.blocks)
            if (!b.vision)
                for (PlannedLayer& l : b.layers) retune(l);
        for (PlannedLayer& l : plan.outside) retune(l);
        std::string mix;
        for (const auto& [label, n] : used) mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " x " + label;
        note("--format " + a.format + ": tuning each layer in its GGUF block type's data type (" + mix +
             "), so the file stores the tuned integers" +
             (disagree ? "; " + std::to_string(disagree) + " layers differ between the formats and are tuned for the "
                         "first one (re-quantized for the others)" : std::string()));
    }
    // The vision blocks (--quant_nontext_module) go to the vision tuner; quantize_model gets the language model's.
    std::vector<PlannedBlock> vision_blocks;
    QuantPlan text_plan = plan;
    text_plan.blocks.clear();
    for (const PlannedBlock& b : plan.blocks) (b.vision ? vision_blocks : text_plan.blocks).push_back(b);
    for (const auto& w : plan.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (so.iters == 0 && !so.disable_opt_rtn && !a.enable_opt_rtn && plan.qc.bits >= 8) so.disable_opt_rtn = true;
    if (so.nblocks > model.config().num_hidden_layers) {
        note("--nblocks " + std::to_string(so.nblocks) + " is clamped to the model's " +
             std::to_string(model.config().num_hidden_layers) + " decoder blocks (all tuned jointly)");
        so.nblocks = model.config().num_hidden_layers;
    }
    if (seqlen > model.config().max_position_embeddings && model.config().max_position_embeddings > 0) {
        note("--seqlen " + std::to_string(seqlen) + " is clamped to max_position_embeddings " +
             std::to_string(model.config().max_position_embeddings));
        seqlen = model.config().max_position_embeddings;
    }
    const double load_s = since(t_load);

    // ---- validate the export before any work -----------------------------------------------------------------
    if (so.iters > 0) plan.qc.iters = so.iters;
    else plan.qc.iters = 0;
    if (so.iters > 0) {
        plan.qc.lr = signround_lr(so, plan.qc.bits);
        plan.qc.minmax_lr = signround_minmax_lr(so, plan.qc.bits);
    }
    ExportOptions eo;
    eo.output_dir = a.output_dir;
    eo.model_name = model_arg;
    eo.overwrite = a.overwrite;
    validate_export(dir, model.tensors(), plan.qc, placeholder_layers(plan), formats, eo);

    // ---- calibration -------------------------------------------------------------------------------------------
    const auto t_cal = Clock::now();
    CalibrationSet cal;
    const bool need_cal = rtn_needs_calibration(text_plan, so);
    // --quant_nontext_module: the language blocks calibrate on image+caption chats, as the reference's MLLM path
    // (its text dataset is replaced by an image dataset); otherwise on text
    const bool mm_cal = need_cal && vl.has_value();
    const std::string dataset = a.dataset.value_or("NeelNanda/pile-10k");
    if (need_cal && !mm_cal) {
        const BpeTokenizer tok = BpeTokenizer::load(dir / "tokenizer.json");
        const TokenizerConfig tcfg = load_tokenizer_config(dir);
        CalibrationOptions co;
        co.dataset = dataset;
        co.nsamples = nsamples;
        co.seqlen = seqlen;
        co.seed = a.seed;
        co.dataset_field = a.dataset_field;
        cal = build_calibration_set(co, tok, tcfg);
        for (const auto& w : cal.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
        if (!a.quiet && !cal.description.empty()) std::fprintf(stderr, "calibration: %s\n", cal.description.c_str());
        check(!cal.samples.empty(), "the calibration set is empty (dataset ", dataset, ", seqlen ", seqlen, ")");
        if (static_cast<int>(cal.samples.size()) < so.batch_size) {
            std::fprintf(stderr, "warning: only %zu calibration samples; batch_size reduced from %d to %zu\n",
                         cal.samples.size(), so.batch_size, cal.samples.size());
            so.batch_size = static_cast<int>(cal.samples.size());
        }
    } else if (a.dataset && mm_cal) {
        note("--dataset is not used: with --quant_nontext_module the language blocks calibrate on the images of "
             "--image_dataset with their captions");
    } else if (a.dataset) {
        note("--dataset is not used: plain RTN (--iters 0 with --disable_opt_rtn, or asym/8-bit) needs no calibration");
    }
    VisionCalibrationSet vcal;
    if (!vision_blocks.empty() || mm_cal) {
        VisionCalibrationOptions vo;
        vo.dir = a.image_dataset;
        vo.nsamples = nsamples;
        vo.image_size = a.image_size;
        vcal = build_vision_calibration(vo, load_model_image_processor_config(dir));
        for (const auto& w : vcal.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
        if (!a.quiet) std::fprintf(stderr, "vision calibration: %s\n", vcal.description.c_str());
        if (so.cuda) note("the vision tower's blocks are tuned on the CPU (the CUDA engine runs the language blocks)");
    }
    MultimodalCalibration mmc;
    if (mm_cal) {
        const BpeTokenizer tok = BpeTokenizer::load(dir / "tokenizer.json");
        MultimodalCalibrationOptions mo;
        mo.seqlen = a.seqlen ? seqlen : std::min(seqlen, 512);  // the reference caps its image dataset at 512
        mmc = build_multimodal_calibration(*vl, vcal, tok, load_tokenizer_config(dir), mo);
        for (const auto& w : mmc.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
        if (!a.quiet) std::fprintf(stderr, "calibration: %s\n", mmc.description.c_str());
        cal.samples = mmc.ids;  // for the report and the resume fingerprint
        cal.description = mmc.description;
        cal.warnings = mmc.warnings;
        seqlen = static_cast<int>(mmc.inputs.L);
        if (static_cast<int>(cal.samples.size()) < so.batch_size) {
            std::fprintf(stderr, "warning: only %zu calibration samples; batch_size reduced from %d to %zu\n",
                         cal.samples.size(), so.batch_size, cal.samples.size());
            so.batch_size = static_cast<int>(cal.samples.size());
        }
    }
    const double cal_s = since(t_cal);

    // ---- quantize ------------------------------------------------------------------------------------------------
    if (!a.quiet)
        std::fprintf(stderr, "quantizing %lld layers of %zu blocks (%s, %s, iters %d, %zu samples x %d tokens, batch %d)\n",
                     (long long)plan.num_quantized(), plan.blocks.size(), scheme_label(plan.qc.global()).c_str(),
                     so.iters > 0 ? "SignRound" : (need_cal ? "optimized RTN" : "RTN"), so.iters, cal.samples.size(),
                     seqlen, so.batch_size);
    // SignRound runs keep a resume checkpoint next to the output folder (quant/tuning_checkpoint.h).
    std::optional<TuningCheckpoint> ckpt;
    if (so.iters > 0) {
        const fs::path model_out = quantized_model_dir(eo.output_dir, eo.model_name, plan.qc);
        const fs::path ck_dir = model_out.string() + ".resume";
        std::error_code ec;
        if (a.no_resume) fs::remove_all(ck_dir, ec);
        std::string identity = fs::weakly_canonical(dir, ec).string();
        for (const auto& f : model.tensors().files()) identity += "|" + f.filename().string() + ":" + std::to_string(fs::file_size(f, ec));
        if (mm_cal)  // the images (the captions are in the token ids)
            for (const auto& f : vcal.files)
                identity += "|image:" + f + ":" + std::to_string(fs::file_size(fs::path(a.image_dataset) / f, ec));
        ckpt.emplace(ck_dir, tuning_fingerprint(identity, text_plan, cal.samples, so), a.overwrite);
        if (!a.quiet && !ckpt->finished().empty())
            std::fprintf(stderr, "resuming: %zu finished block(s) in %s\n", ckpt->finished().size(), ck_dir.c_str());
    }
    QuantizeResult qr;
    if (!vision_blocks.empty()) {  // the tower first (model order); no resume checkpoint for it (it is small)
        qr = quantize_vision_tower(model.tensors(), vl->vision(), vision_blocks, vcal, so);
    }
    if (!text_plan.blocks.empty() || !text_plan.outside.empty()) {
        QuantizeResult tr = mm_cal ? quantize_model_from_inputs(model, text_plan, std::move(mmc.inputs), so, ckpt ? &*ckpt : nullptr)
                                   : quantize_model(model, text_plan, cal.samples, so, ckpt ? &*ckpt : nullptr);
        for (auto& [name, q] : tr.layers) qr.layers.emplace(name, std::move(q));
        qr.blocks.insert(qr.blocks.end(), tr.blocks.begin(), tr.blocks.end());
        qr.warnings.insert(qr.warnings.end(), tr.warnings.begin(), tr.warnings.end());
        qr.method = tr.method;
        qr.seconds += tr.seconds;
    }
    for (const auto& w : qr.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());

    // ---- export (the report is written into each folder before it is renamed into place) ------------------------
    const auto t_exp = Clock::now();
    std::function<nlohmann::ordered_json(double)> make_report;
    eo.before_commit = [&](const fs::path& tmp) {
        const fs::path p = tmp / "quantize_report.json";
        std::ofstream f(p, std::ios::binary);
        f << make_report(since(t_exp)).dump(2) << "\n";
        check(static_cast<bool>(f), "cannot write ", p.string());
    };
    const std::vector<fs::path> planned_folders =
        export_folders(quantized_model_dir(eo.output_dir, eo.model_name, plan.qc), formats, plan.qc);

    // ---- report ---------------------------------------------------------------------------------------------------
    using json = nlohmann::ordered_json;
    json settings = {
        {"model", model_arg},
        {"output_dir", a.output_dir},
        {"scheme", a.scheme.value_or("W4A16")},
        {"bits", plan.qc.bits},
        {"group_size", plan.qc.group_size},
        {"sym", plan.qc.sym},
        {"data_type", plan.qc.data_type},
        {"recipe", a.recipe},
        {"iters", so.iters},
        {"lr", so.iters > 0 ? json(signround_lr(so, plan.qc.bits)) : json(nullptr)},
        {"minmax_lr", so.iters > 0 ? json(signround_minmax_lr(so, plan.qc.bits)) : json(nullptr)},
        {"lr_schedule", "LinearLR(1 -> 0, total_iters = iters)"},
        {"optimizer", "SignSGD"},
        {"nsamples", nsamples},
        {"nsamples_used", cal.samples.size()},
        {"seqlen", seqlen},
        {"batch_size", so.batch_size},
        {"gradient_accumulate_steps", so.gradient_accumulate_steps},
        {"dataset", mm_cal ? json("image+text chats from --image_dataset") : need_cal ? json(dataset) : json(nullptr)},
        {"dataset_field", a.dataset_field},
        {"seed", a.seed},
        {"enable_minmax_tuning", so.enable_minmax_tuning},
        {"enable_quanted_input", so.enable_quanted_input},
        {"not_use_best_mse", so.not_use_best_mse},
        {"dynamic_max_gap", so.dynamic_max_gap},
        {"nblocks", so.nblocks},
        {"quant_nontext_module", a.quant_nontext_module},
        {"image_dataset", tune_vision ? json(a.image_dataset) : json(nullptr)},
        {"image_size", tune_vision ? json(a.image_size) : json(nullptr)},
        {"disable_opt_rtn", so.disable_opt_rtn},
        {"to_quant_block_names", a.to_quant_block_names},
        {"ignore_layers", a.ignore_layers},
        {"layer_config", a.layer_config},
        {"quant_lm_head", plan.qc.quant_lm_head},
        {"formats", a.format},
        {"device", device},
        {"gpu_precision", so.cuda ? a.gpu_precision : "-"},
        {"low_gpu_mem_usage", so.low_gpu_mem_usage},
        {"fp8_backward", so.cuda_fp8_backward},
        {"cuda_graphs", so.cuda_graphs},
        {"threads", a.threads},
    };
    json blocks = json::array();
    for (const auto& b : qr.blocks) {
        json j = {{"name", b.name}, {"index", b.index}, {"method", b.method}, {"layers", b.layers}};
        if (b.method == "signround") {
            j["iters_run"] = b.iters_run;
            j["initial_loss"] = b.initial_loss;
            j["best_loss"] = b.best_loss;
            j["best_iter"] = b.best_iter;
            j["last_loss"] = b.last_loss;
            j["final_loss"] = b.final_loss >= 0 ? json(b.final_loss) : json(nullptr);
            j["losses"] = b.losses;
            j["tune_seconds"] = b.tune_seconds;
            j["resumed"] = b.resumed;
            j["profile_seconds"] = {{"fake_quant_forward", b.qdq_seconds}, {"block_forward_and_loss", b.forward_seconds},
                                    {"block_backward", b.backward_seconds},
                                    {"device_forward_loss_backward", b.device_step_seconds},
                                    {"fake_quant_backward_and_update", b.update_seconds},
                                    {"fp_targets", b.targets_seconds}, {"setup", b.setup_seconds},
                                    {"codes_and_qdq", b.finish_seconds}, {"quantized_chain", b.chain_seconds},
                                    {"codes_and_qdq_in_background", b.background_seconds}};
        }
        j["seconds"] = b.seconds;
        blocks.push_back(j);
    }
    json skipped = json::array();
    for (const auto& s : plan.skipped) skipped.push_back({{"name", s.name}, {"reason", s.reason}});
    json outside = json::array();
    for (const auto& l : plan.outside) outside.push_back(l.name);
    json fold = json::array();
    for (size_t i = 0; i < formats.size() && i < planned_folders.size(); ++i)
        fold.push_back({{"format", export_format_name(formats[i])},
                        {"backend", export_backend_name(formats[i], plan.qc)},
                        {"folder", planned_folders[i].string()}});
    std::vector<std::string> warnings = plan.warnings;
    warnings.insert(warnings.end(), cal.warnings.begin(), cal.warnings.end());
    warnings.insert(warnings.end(), qr.warnings.begin(), qr.warnings.end());
    make_report = [&](double exp_s) -> json {
    const double total_s = since(t_all);
    return json{
        {"tool", "autoround.cpp quantize"},
        {"method", qr.method},
        {"settings", settings},
        {"calibration", {{"description", cal.description}, {"samples", cal.samples.size()},
                         {"vision", vision_blocks.empty() ? json(nullptr)
                                                          : json{{"description", vcal.description},
                                                                 {"images", vcal.files},
                                                                 {"rows_per_image", vcal.rows_per_image}}}}},
        {"layers", {{"quantized", qr.layers.size()}, {"skipped", skipped}, {"outside_blocks_rtn", outside}}},
        {"loss_definition", mm_cal ? "mean squared error between the quantized and the full-precision block output "
                                     "over the iteration's batch (all hidden values of the real tokens; padding after "
                                     "short captions masked); final_loss: over all calibration samples with the "
                                     "exported weights"
                                   : "mean squared error between the quantized and the full-precision block output over "
                                     "the iteration's batch (all hidden values, last token of every sample masked); "
                                     "final_loss: over all calibration samples with the exported weights"},
        {"blocks", blocks},
        {"warnings", warnings},
        {"timing_seconds", {{"load", load_s}, {"calibration", cal_s}, {"quantize", qr.seconds}, {"export", exp_s},
                            {"total", total_s}}},
        {"peak_rss_mb", peak_rss_mb()},
        {"folders", fold},
    };
    };
    eo.card.settings = settings;
    for (const auto& sk : plan.skipped) eo.card.kept_layers.push_back({sk.name, sk.reason});
    if (!a.push_to_hub.empty()) eo.card.repo_id = a.push_to_hub;
    const std::vector<ExportResult> written = export_model(dir, model.tensors(), plan.qc, qr.layers, formats, eo);
    const double exp_s = since(t_exp);
    const double total_s = since(t_all);
    if (ckpt) ckpt->remove();  // the outputs are in place: the resume checkpoint has done its job

    // ---- summary table ---------------------------------------------------------------------------------------
    int name_w = 18;  // "model.language_model.layers.35" is wider than "model.layers.35"
    for (const auto& b : qr.blocks) name_w = std::max(name_w, static_cast<int>(b.name.size()));
    std::printf("\n%-*s %-9s %6s %6s  %-34s %-10s %8s\n", name_w, "block", "method", "layers", "iters",
                "loss first -> best @iter", "final", "time");
    for (const auto& b : qr.blocks) {
        std::string loss = "-", fin = "-", it = "-";
        if (b.method == "signround") {
            loss = fmt(b.initial_loss) + " -> " + fmt(b.best_loss) + " @" + std::to_string(b.best_iter);
            fin = b.final_loss >= 0 ? fmt(b.final_loss) : "-";
            it = std::to_string(b.iters_run);
        }
        std::printf("%-*s %-9s %6d %6s  %-34s %-10s %8s%s\n", name_w, b.name.c_str(), b.method.c_str(), b.layers, it.c_str(),
                    loss.c_str(), fin.c_str(), ProgressBar::format_duration(b.seconds).c_str(),
                    b.resumed ? " (resumed)" : "");
    }
    std::printf("\n%zu layers quantized (%s, %s), %zu kept 16-bit; calibration %s, quantization %s, export %s, "
                "total %s; peak RSS %.0f MB\n",
                qr.layers.size(), scheme_label(plan.qc.global()).c_str(), qr.method.c_str(), plan.skipped.size(),
                ProgressBar::format_duration(cal_s).c_str(), ProgressBar::format_duration(qr.seconds).c_str(),
                ProgressBar::format_duration(exp_s).c_str(), ProgressBar::format_duration(total_s).c_str(),
                peak_rss_mb());
    {
        double tune = 0, qdq = 0, fwd = 0, bwd = 0, upd = 0, all = 0, outside = 0, tgt = 0, setup = 0, fin = 0, chain = 0,
               bg = 0, dev = 0;
        int its = 0, tuned = 0;
        for (const auto& b : qr.blocks) {
            if (b.method == "signround" && !b.resumed) {
                ++tuned;
                all += b.seconds;
                outside += b.seconds - b.tune_seconds;
                tgt += b.targets_seconds;
                setup += b.setup_seconds;
                fin += b.finish_seconds;
                bg += b.background_seconds;
                chain += b.chain_seconds;
            }
            tune += b.tune_seconds;
            qdq += b.qdq_seconds;
            fwd += b.forward_seconds;
            bwd += b.backward_seconds;
            upd += b.update_seconds;
            dev += b.device_step_seconds;
            its += b.iters_run;
        }
        if (its > 0 && tune > 0 && bwd == 0 && (fwd > 0 || dev > 0))  // the GPU tuner: device calls per iteration
            std::printf("tuning: %.2f ms per block-iteration (host side: waiting for the device's step and loss %.0f%%, "
                        "queueing the fake-quant backward + SignSGD %.0f%%, other %.0f%%)\n",
                        1e3 * tune / its, 100 * (fwd + qdq + dev) / tune, 100 * upd / tune,
                        100 * (tune - fwd - qdq - dev - upd) / tune);
        else if (its > 0 && tune > 0)
            std::printf("tuning: %.3f s per block-iteration (block forward+loss %.0f%%, block backward %.0f%%, "
                        "fake-quant forward %.0f%%, fake-quant backward+SignSGD %.0f%%)\n",
                        tune / its, 100 * fwd / tune, 100 * bwd / tune, 100 * qdq / tune, 100 * upd / tune);
        char bg_note[96] = "";
        if (bg > 0)
            std::snprintf(bg_note, sizeof bg_note, "; + %.2f s of codes + QDQ on another thread while the GPU went on",
                          bg / tuned);
        if (tuned > 0 && its > 0)
            std::printf("per tuned block: %.2f s, of which %.2f s outside the iterations (FP targets %.2f s, setup %.2f s, "
                        "codes + QDQ %.2f s, quantized chain %.2f s)%s\n",
                        all / tuned, outside / tuned, tgt / tuned, setup / tuned, fin / tuned, chain / tuned,
                        bg_note);
    }
    for (const auto& r : written)
        std::printf("  %-22s -> %s  (+ quantize_report.json)\n", r.backend.c_str(), r.folder.string().c_str());
    std::fflush(stdout);
    // ---- push (the seed's `--push_to_hub USER/NAME-{format}`) ------------------------------------------------------
    if (!a.push_to_hub.empty()) {
        const hub::HubSettings hs = hub::hub_settings_from_env();
        for (const auto& r : written) {
            hub::PushOptions po;
            po.repo = expand_format_placeholder(a.push_to_hub, export_format_name(r.format));
            po.folder = r.folder;
            const hub::PushResult pr = hub::push_folder(po, hs);
            std::printf("  pushed %s -> %s (%zu files, %zu LFS uploaded)\n", r.folder.string().c_str(),
                        pr.commit_url.c_str(), pr.files, pr.lfs_uploaded);
        }
    }
    return 0;
}

}  // namespace

void add_quantize_command(CLI::App& root) {
    auto a = std::make_shared<QuantizeArgs>();
    CLI::App* c = root.add_subcommand(
        "quantize", "AutoRound (SignRound) weight-only quantization on CPU, exported as auto_round / auto_gptq / "
                    "auto_awq / fake (flag names as in Intel's auto-round CLI)");
    c->add_option("--model,--model_name,--model_name_or_path", a->model, "Model folder (Hugging Face layout)");
    c->add_option("model", a->model_pos, "Model folder (positional form of --model)");
    c->add_option("--output_dir", a->output_dir,
                  "Output root (default ./tmp_autoround); the model goes to <output_dir>/<model>-w<bits>g<group>");
    c->add_option("--scheme", a->scheme, "W4A16 (default), W2A16, W2A16G64, W2A16G32, W3A16, W8A16 (also W5A16, W6A16)");
    c->add_option("--bits", a->bits, "Override the scheme's weight bits (2, 3, 4, 8)");
    c->add_option("--group_size", a->group_size, "Override the group size (-1 = per output channel)");
    c->add_flag("--sym", a->sym, "Symmetric (auto-round's full-range symmetric; the presets' default)");
    c->add_flag("--asym", a->asym, "Asymmetric weights (zero points)");
    c->add_option("--data_type,--dtype", a->data_type, "Weight data type; only int is implemented");
    c->add_option("--iters,--iter", a->iters, "Tuning iterations per block (default 200; 0 = RTN)");
    c->add_option("--nsamples,--nsample", a->nsamples, "Calibration samples (default 128)");
    c->add_option("--seqlen,--seq_len", a->seqlen, "Tokens per calibration sample (default 2048)");
    c->add_option("--batch_size,--train_bs,--bs", a->batch_size, "Samples per tuning step (default 8)");
    c->add_option("--gradient_accumulate_steps", a->gradient_accumulate_steps,
                  "Sub-batches of batch_size per step (default 1)");
    c->add_option("--lr", a->lr, "SignSGD learning rate of the rounding offsets (default 1/iters; 2/iters for <=3-bit "
                                 "layers at >=1000 iters)");
    c->add_option("--minmax_lr", a->minmax_lr, "Learning rate of the min/max scales (default: lr)");
    c->add_option("--format,--formats", a->format,
                  "Comma list of auto_round (default), auto_round:auto_gptq, auto_round:auto_awq, "
                  "auto_round:gptqmodel, auto_gptq, auto_awq, fake");
    c->add_option("--dataset", a->dataset,
                  "Calibration data: file/folder[:key=value...][,...] (keys num, concat, apply_chat_template, "
                  "system_prompt, shuffle=false); default NeelNanda/pile-10k (needs the Hub)");
    c->add_option("--dataset_field", a->dataset_field, "JSON field holding the text (default text)");
    c->add_option("--seed", a->seed, "Random seed (calibration shuffle, mini-batch sampler; default 42)");
    c->add_option("--device,--device_map,--devices", a->device, "cpu (default), cuda (the block forward/backward on the GPU), auto");
    c->add_option("--gpu_precision", a->gpu_precision,
                  "GPU block math: fp32 (default; FP32 GEMMs, matches the CPU path) or bf16 (tensor cores with FP32 "
                  "accumulation, like the reference's autocast; ~8x faster on an H100)");
    c->add_flag("--low_gpu_mem_usage", a->low_gpu_mem_usage,
                "With --device cuda: keep the block's cached inputs and targets in (pinned) host memory and copy each "
                "mini-batch to the GPU when used (less GPU memory, a little slower); no effect on CPU");
    c->add_flag("--fp8_backward", a->fp8_backward,
                "With --device cuda --gpu_precision bf16: run the backward GEMMs (dX, dW) on FP8 tensor cores "
                "(per-tensor scaled e5m2 gradients x e4m3 operands; SignSGD uses only the sign of dW); the forward "
                "stays bf16. Needs an H100-class GPU");
    c->add_flag("--enable_torch_compile", a->enable_torch_compile,
                "--device cuda, bf16: capture one tuning iteration in CUDA graphs and replay them");
    c->add_flag("--disable_torch_compile", a->disable_torch_compile, "Accepted for compatibility; no effect");
    c->add_flag("--quant_nontext_module", a->quant_nontext_module,
                "Also quantize a VLM's vision tower: its blocks are tuned with SignRound on the images of "
                "--image_dataset (no effect for text-only models). Without it only the language model is quantized "
                "and the tower stays BF16");
    c->add_option("--image_dataset", a->image_dataset,
                  "With --quant_nontext_module: a folder of .png/.jpg calibration images (optional <name>.txt "
                  "captions); at most --nsamples are used, in file-name order. The vision blocks tune on the images, "
                  "the language blocks on image+caption chats (replacing --dataset)");
    c->add_option("--image_size", a->image_size,
                  "With --quant_nontext_module: calibration images are resized to this square size (default 448; a "
                  "multiple of patch_size x merge_size)");
    c->add_flag("--disable_opt_rtn", a->disable_opt_rtn, "With --iters 0: plain RTN instead of optimized RTN");
    c->add_flag("--enable_opt_rtn", a->enable_opt_rtn, "With --iters 0: optimized RTN (the default for sym < 8 bits)");
    c->add_flag("--not_use_best_mse", a->not_use_best_mse, "Keep the last iterate instead of the best one");
    c->add_option("--dynamic_max_gap", a->dynamic_max_gap,
                  "Stop a block's tuning when the best loss is this many iterations old (default -1 = off)");
    c->add_flag("--enable_minmax_tuning", a->enable_minmax_tuning, "Tune the min/max scales (default on)");
    c->add_flag("--disable_minmax_tuning", a->disable_minmax_tuning, "Keep the min/max scales at 1");
    c->add_flag("--enable_quanted_input", a->enable_quanted_input,
                "Tune each block on the quantized previous blocks' output (default on)");
    c->add_flag("--disable_quanted_input", a->disable_quanted_input, "Tune each block on the full-precision input");
    c->add_option("--nblocks", a->nblocks,
                  "Consecutive decoder blocks tuned jointly (default 1; the last group may be shorter; values above "
                  "the model's block count are clamped). More than 1 runs on the CPU: with --device cuda/auto it "
                  "falls back to the CPU with a note");
    c->add_option("--to_quant_block_names", a->to_quant_block_names, "Comma list of regexes selecting blocks");
    c->add_option("--ignore_layers,--fp_layers", a->ignore_layers, "Comma list of layers kept in 16 bit");
    c->add_option("--layer_config", a->layer_config,
                  "Per-layer overrides as JSON (or a JSON file), e.g. '{\"mlp.down_proj\": {\"bits\": 8}}'");
    c->add_flag("--quant_lm_head", a->quant_lm_head, "Also quantize lm_head (RTN; refused for tied embeddings)");
    c->add_option("--recipe", a->recipe, "default (200 iters), best (1000 iters, 512 samples), light (50 iters, "
                                         "lr 5e-3), rtn, opt-rtn; explicit flags win");
    c->add_flag("--overwrite", a->overwrite, "Replace existing non-empty output folders");
    c->add_option("--push_to_hub", a->push_to_hub,
                  "Push every exported folder to this Hub repo; {format} becomes the format name "
                  "(e.g. USER/Qwen3-4B-Instruct-2507-{format}); token from HF_TOKEN or --token");
    c->add_flag("--no_resume", a->no_resume,
                "Start from scratch: delete the resume checkpoint <model folder>.resume of an interrupted run "
                "(by default a run restarted with the same command resumes after its last finished block)");
    c->add_flag("--quiet", a->quiet, "No progress bars or notes");
    c->add_option("--threads", a->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
    c->callback([a] { run_quantize(*a); });
}

}  // namespace autoround::cli
