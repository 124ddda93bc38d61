// quant/tuning_checkpoint.cpp — see tuning_checkpoint.h.
#include "quant/tuning_checkpoint.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "core/error.h"
#include "io/safetensors.h"

namespace autoround {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr int kCheckpointVersion = 1;

struct Fnv1a {
    uint64_t h = 1469598103934665603ULL;
    void bytes(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) {
            h ^= b[i];
            h *= 1099511628211ULL;
        }
    }
    void str(const std::string& s) {
        const uint64_t n = s.size();
        bytes(&n, sizeof n);
        bytes(s.data(), s.size());
    }
};

std::string block_stem(int index) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "block-%04d", index);
    return buf;
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    check(f.good(), "cannot read ", p.string());
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Writes `text` to p.tmp and renames it over p (atomic on POSIX).
void write_atomic(const fs::path& p, const std::string& text) {
    const fs::path tmp = p.string() + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        check(f.good(), "cannot write ", tmp.string());
        f << text;
        f.flush();
        check(f.good(), "error writing ", tmp.string(), " (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, p, ec);
    check(!ec, "cannot rename ", tmp.string(), " to ", p.string(), ": ", ec.message());
}

json report_to_json(const BlockReport& r) {
    return {{"name", r.name},
            {"index", r.index},
            {"layers", r.layers},
            {"method", r.method},
            {"iters_run", r.iters_run},
            {"initial_loss", r.initial_loss},
            {"best_loss", r.best_loss},
            {"best_iter", r.best_iter},
            {"last_loss", r.last_loss},
            {"final_loss", r.final_loss},
            {"losses", r.losses},
            {"seconds", r.seconds},
            {"tune_seconds", r.tune_seconds},
            {"qdq_seconds", r.qdq_seconds},
            {"forward_seconds", r.forward_seconds},
            {"backward_seconds", r.backward_seconds},
            {"update_seconds", r.update_seconds},
            {"device_step_seconds", r.device_step_seconds},
            {"group", r.group}};
}

BlockReport report_from_json(const json& j) {
    BlockReport r;
    r.name = j.at("name").get<std::string>();
    r.index = j.at("index").get<int>();
    r.layers = j.at("layers").get<int>();
    r.method = j.at("method").get<std::string>();
    r.iters_run = j.at("iters_run").get<int>();
    r.initial_loss = j.at("initial_loss").get<double>();
    r.best_loss = j.at("best_loss").get<double>();
    r.best_iter = j.at("best_iter").get<int>();
    r.last_loss = j.at("last_loss").get<double>();
    r.final_loss = j.at("final_loss").get<double>();
    r.losses = j.at("losses").get<std::vector<double>>();
    r.seconds = j.at("seconds").get<double>();
    r.tune_seconds = j.at("tune_seconds").get<double>();
    r.qdq_seconds = j.at("qdq_seconds").get<double>();
    r.forward_seconds = j.at("forward_seconds").get<double>();
    r.backward_seconds = j.at("backward_seconds").get<double>();
    r.update_seconds = j.at("update_seconds").get<double>();
    r.device_step_seconds = j.value("device_step_seconds", 0.0);  // absent in checkpoints of earlier versions
    r.group = j.value("group", std::string());  // absent in checkpoints written before --nblocks
    return r;
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(T));
    if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
}

template <typename T>
std::vector<T> tensor_values(const TensorInfo& t, DType want, const std::string& file) {
    check(t.dtype == want, file, ": tensor ", t.name, " has dtype ", dtype_name(t.dtype), ", expected ",
          dtype_name(want), " (corrupt checkpoint; delete the folder to start over)");
    std::vector<T> v(t.nbytes / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), t.data, t.nbytes);
    return v;
}

}  // namespace

std::string tuning_fingerprint(const std::string& model_identity, const QuantPlan& plan,
                               const std::vector<std::vector<int32_t>>& samples, const SignRoundOptions& o) {
    json j = {{"version", kCheckpointVersion},
              {"model", model_identity},
              {"iters", o.iters},
              {"lr", o.lr ? json(*o.lr) : json(nullptr)},
              {"minmax_lr", o.minmax_lr ? json(*o.minmax_lr) : json(nullptr)},
              {"batch_size", o.batch_size},
              {"gradient_accumulate_steps", o.gradient_accumulate_steps},
              {"nblocks", o.nblocks},
              {"enable_minmax_tuning", o.enable_minmax_tuning},
              {"enable_quanted_input", o.enable_quanted_input},
              {"not_use_best_mse", o.not_use_best_mse},
              {"dynamic_max_gap", o.dynamic_max_gap},
              {"disable_opt_rtn", o.disable_opt_rtn},
              {"seed", o.seed},
              {"mask_last_token", o.mask_last_token},
              {"cuda", o.cuda},
              {"cuda_bf16", o.cuda_bf16}};
    json blocks = json::array();
    for (const auto& b : plan.blocks) {
        json layers = json::array();
        for (const auto& l : b.layers)
            layers.push_back({l.name, l.out, l.in, l.scheme.bits, l.scheme.group_size, l.scheme.sym, l.scheme.data_type});
        blocks.push_back({{"name", b.name}, {"index", b.index}, {"layers", layers}});
    }
    j["blocks"] = blocks;
    Fnv1a h;
    h.str(j.dump());
    const uint64_t ns = samples.size();
    h.bytes(&ns, sizeof ns);
    for (const auto& s : samples) {
        const uint64_t len = s.size();
        h.bytes(&len, sizeof len);
        h.bytes(s.data(), s.size() * sizeof(int32_t));
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, h.h);
    return buf;
}

TuningCheckpoint::TuningCheckpoint(fs::path dir, std::string fingerprint, bool discard_other)
    : dir_(std::move(dir)), fingerprint_(std::move(fingerprint)) {
    const fs::path fp = dir_ / "fingerprint.json";
    std::error_code ec;
    if (fs::exists(dir_, ec)) {
        check(fs::is_directory(dir_, ec), "resume checkpoint ", dir_.string(), " exists and is not a folder; remove it");
        std::string found;
        if (fs::exists(fp, ec)) {
            try {
                found = json::parse(read_file(fp)).at("fingerprint").get<std::string>();
            } catch (const std::exception&) {
                found = "(unreadable)";
            }
        }
        if (found != fingerprint_ && !fs::is_empty(dir_, ec)) {
            check(discard_other, "the resume checkpoint ", dir_.string(),
                  " belongs to a different quantize command (model, scheme, options or calibration data differ); "
                  "re-run the original command to resume it, pass --overwrite to discard it, or delete the folder");
            std::fprintf(stderr, "note: discarding the resume checkpoint %s of a different command (--overwrite)\n",
                         dir_.string().c_str());
            fs::remove_all(dir_, ec);
            check(!ec, "cannot remove ", dir_.string(), ": ", ec.message());
        }
    }
    fs::create_directories(dir_, ec);
    check(!ec, "cannot create the resume checkpoint folder ", dir_.string(), ": ", ec.message());
    if (!fs::exists(fp, ec))
        write_atomic(fp, json{{"version", kCheckpointVersion}, {"fingerprint", fingerprint_}}.dump(2) + "\n");
    for (const auto& e : fs::directory_iterator(dir_)) {
        const std::string f = e.path().filename().string();
        int idx = -1;
        char tail[8] = {0};
        if (f.size() == 15 && std::sscanf(f.c_str(), "block-%4d.%4s", &idx, tail) == 2 && std::strcmp(tail, "json") == 0 &&
            fs::exists(dir_ / (block_stem(idx) + ".safetensors")))
            finished_.push_back(idx);
    }
    std::sort(finished_.begin(), finished_.end());
}

bool TuningCheckpoint::has(int block_index) const {
    const std::lock_guard<std::mutex> g(*lock_);
    return std::binary_search(finished_.begin(), finished_.end(), block_index);
}

void TuningCheckpoint::save(int block_index, const BlockTuneResult& r, const std::vector<BlockLayerSpec>& layers,
                            const PythonRandom& rng) {
    SafetensorsWriter w;
    json jl = json::array();
    for (const auto& spec : layers) {
        const QuantizedTensor& q = r.quantized.at(spec.name);
        const std::vector<int64_t> full = {q.out_features, q.in_features}, grp = {q.out_features, q.n_groups()};
        w.add(spec.name + ".codes", DType::U8, full, q.codes);
        w.add(spec.name + ".scales", DType::F32, grp, as_bytes(q.scales));
        if (!q.zeros.empty()) w.add(spec.name + ".zeros", DType::I32, grp, as_bytes(q.zeros));
        if (!q.float_zeros.empty()) w.add(spec.name + ".float_zeros", DType::F32, grp, as_bytes(q.float_zeros));
        if (q.double_quant()) {  // GGUF k-quant integers (quant/gguf_double_quant.h)
            const std::vector<int64_t> sup = {static_cast<int64_t>(q.dq_d.size())};
            w.add(spec.name + ".dq_d", DType::F32, sup, as_bytes(q.dq_d));
            w.add(spec.name + ".dq_sc", DType::I32, grp, as_bytes(q.dq_sc));
            if (!q.sym) {
                w.add(spec.name + ".dq_dmin", DType::F32, sup, as_bytes(q.dq_dmin));
                w.add(spec.name + ".dq_mn", DType::I32, grp, as_bytes(q.dq_mn));
            }
        }
        w.add_bf16_from_f32(spec.name + ".qdq", full, r.qdq[static_cast<size_t>(spec.which)]);
        jl.push_back({{"name", spec.name},
                      {"which", spec.which},
                      {"bits", q.bits},
                      {"group_size", q.group_size},
                      {"sym", q.sym},
                      {"dq_super_group", q.dq_super_group},
                      {"out", q.out_features},
                      {"in", q.in_features}});
    }
    const std::string stem = block_stem(block_index);
    w.write_file(dir_ / (stem + ".safetensors"));  // tmp + rename inside
    const PythonRandom::State s = rng.state();
    json j = {{"version", kCheckpointVersion},
              {"fingerprint", fingerprint_},
              {"block", block_index},
              {"layers", jl},
              {"rng_mti", s.mti},
              {"rng_mt", std::vector<uint32_t>(s.mt.begin(), s.mt.end())},
              {"report", report_to_json(r.report)}};
    write_atomic(dir_ / (stem + ".json"), j.dump() + "\n");  // the block is finished from here on
    const std::lock_guard<std::mutex> g(*lock_);
    if (!std::binary_search(finished_.begin(), finished_.end(), block_index)) {
        finished_.push_back(block_index);
        std::sort(finished_.begin(), finished_.end());
    }
}

TuningCheckpoint::Block TuningCheckpoint::load(int block_index) const {
    const std::string stem = block_stem(block_index);
    const fs::path jp = dir_ / (stem + ".json"), sp = dir_ / (stem + ".safetensors");
    Block b;
    try {
        const json j = json::parse(read_file(jp));
        check(j.at("fingerprint").get<std::string>() == fingerprint_, "fingerprint differs");
        check(j.at("block").get<int>() == block_index, "block index differs");
        const auto mt = j.at("rng_mt").get<std::vector<uint32_t>>();
        check(mt.size() == b.rng.mt.size(), "rng state has ", mt.size(), " words");
        std::copy(mt.begin(), mt.end(), b.rng.mt.begin());
        b.rng.mti = j.at("rng_mti").get<int>();
        check(b.rng.mti >= 0 && b.rng.mti <= 625, "rng position ", b.rng.mti, " out of range");
        b.report = report_from_json(j.at("report"));
        const TensorStore ts = TensorStore::open(sp);
        for (const auto& l : j.at("layers")) {
            QuantizedTensor q;
            q.name = l.at("name").get<std::string>();
            q.bits = l.at("bits").get<int>();
            q.group_size = l.at("group_size").get<int64_t>();
            q.sym = l.at("sym").get<bool>();
            q.out_features = l.at("out").get<int64_t>();
            q.in_features = l.at("in").get<int64_t>();
            const std::string f = sp.string();
            q.codes = tensor_values<uint8_t>(ts.get(q.name + ".codes"), DType::U8, f);
            q.scales = tensor_values<float>(ts.get(q.name + ".scales"), DType::F32, f);
            if (ts.has(q.name + ".zeros")) q.zeros = tensor_values<int32_t>(ts.get(q.name + ".zeros"), DType::I32, f);
            if (ts.has(q.name + ".float_zeros"))
                q.float_zeros = tensor_values<float>(ts.get(q.name + ".float_zeros"), DType::F32, f);
            q.dq_super_group = l.value("dq_super_group", int64_t(0));
            if (q.double_quant()) {
                q.dq_d = tensor_values<float>(ts.get(q.name + ".dq_d"), DType::F32, f);
                q.dq_sc = tensor_values<int32_t>(ts.get(q.name + ".dq_sc"), DType::I32, f);
                if (!q.sym) {
                    q.dq_dmin = tensor_values<float>(ts.get(q.name + ".dq_dmin"), DType::F32, f);
                    q.dq_mn = tensor_values<int32_t>(ts.get(q.name + ".dq_mn"), DType::I32, f);
                }
            }
            q.validate();
            std::vector<float> qdq = ts.load_f32(q.name + ".qdq");
            check(static_cast<int64_t>(qdq.size()) == q.out_features * q.in_features, "qdq of ", q.name, " has ",
                  qdq.size(), " values");
            b.qdq.emplace(q.name, std::move(qdq));
            b.quantized.emplace(q.name, std::move(q));
        }
    } catch (const std::exception& e) {
        fail("resume checkpoint ", jp.string(), " is corrupt (", e.what(),
             "); delete ", dir_.string(), " (or pass --overwrite) to start over");
    }
    return b;
}

void TuningCheckpoint::remove() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (ec) std::fprintf(stderr, "warning: could not remove the resume checkpoint %s: %s\n", dir_.string().c_str(),
                         ec.message().c_str());
    finished_.clear();
}

}  // namespace autoround
