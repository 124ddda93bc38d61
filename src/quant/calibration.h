// quant/calibration.h — the calibration set of AutoRound (spec §1.4): which token sequences the
// block-tuning loop feeds through the model.
//
// Why this file exists: AutoRound's accuracy depends on *which* text it calibrates on, so the set
// must be reproducible run to run and, where the reference tool (Intel auto-round,
// calib_dataset.py) defines the recipe, identical to what that tool selects.
//
// Pipeline for one dataset entry of `--dataset` (grammar: name[:key=value...][,name2...]):
//   1. read the documents of a local source, in file order:
//      * .jsonl  one JSON value per line: an object whose field `dataset_field` ("text") is the
//                document, or a bare JSON string; blank lines are skipped;
//      * .json   one JSON array (or object, whose values are taken in file order) of such values;
//      * .txt    (and any other explicitly named file) — the spec is silent on plain text, so we
//                follow the reference tool's local-text loader: EVERY line is one document
//                (universal newlines), empty lines included (they have 0 tokens and never pass
//                the length filter, but they keep the shuffle identical to the reference's);
//      * a folder: its .txt/.jsonl/.json files (not recursive), sorted by name, as one dataset.
//      Each document is right-stripped of whitespace (Python str.rstrip), as the reference does.
//   2. shuffle the documents (default) with the reference's local-file shuffle,
//      `random.Random(seed).shuffle(docs)` — Python's MT19937 — reproduced bit-exactly;
//      our own key `shuffle=false` keeps file order instead;
//   3. optionally wrap each text as a chat (`apply_chat_template`, `system_prompt=...`: one user
//      message, plus a system message if given, add_generation_prompt = true);
//   4. tokenize without special tokens (a BOS is prepended only when tokenizer_config.json says
//      add_bos_token: true — never for Qwen), truncated to `seqlen`;
//   5. `concat=true`: concatenate the (truncated) documents and cut `seqlen` chunks (each chunk
//      starts with BOS when the tokenizer adds one; the tail shorter than a chunk is dropped);
//   6. filter: drop a sample shorter than `seqlen`, and drop it when the last of its first `seqlen`
//      tokens occurs more than seqlen/2 times among them (degenerate repetition; seqlen > 2);
//   7. keep the first `num` (per dataset) / `nsamples` survivors. Several datasets: sorted by their
//      number of survivors, nsamples split evenly among those without `num=` (a short one's
//      shortfall goes to the next), concatenated and mixed with HF datasets' shuffle, i.e. numpy
//      `default_rng(seed).permutation(n)` — PCG64 + SeedSequence + Generator.shuffle, reproduced
//      bit-exactly (skipped when every entry says shuffle=false: then the given order is kept).
//   Fewer samples than nsamples -> nsamples is reduced, with a warning like the reference tool's.
//
// Shuffle exactness: python_random_shuffle_order() equals Python 3's random.Random(seed).shuffle
// and numpy_permutation() equals numpy.random.default_rng(seed).permutation(n); both are checked in
// tests/quant/test_calibration.cpp against values produced by CPython 3.11 and numpy 1.24.
//
// Deviations from the reference tool, on purpose (each is a bug or a hazard there):
//   * spaces inside the --dataset string are kept (the reference deletes every space, which
//     mangles system prompts); whitespace around names, keys and values is trimmed;
//   * unknown keys and malformed values are errors (the reference ignores them);
//   * `num=N` larger than what survives the filters is reduced with a warning (the reference
//     raises IndexError); a JSON object without the field is an error naming file and line (the
//     reference takes the value of any one-key object);
//   * with several datasets and some `num=`, the remaining samples are split evenly among the
//     others (the reference divides by a fixed count while subtracting what earlier ones took);
//   * concat re-inserts at most one BOS per chunk (the reference's count of BOS/EOS to reserve
//     grows with every document). Qwen tokenizers add neither, so there both agree.
//   * with apply_chat_template and no system_prompt no system message is added (spec §1.4);
//     if the template rejects a system message, the text is rendered without it, with a warning.
// Hub datasets: a name that is not a local path — NeelNanda/pile-10k (the default), a registered
// alias (pile-10k) or any org/name[@revision] dataset repo — is downloaded into the Hugging Face cache
// (hub/hub_download.h; HF_HUB_OFFLINE=1 reads the cache only). Its data files for split= (default
// train; .parquet, .jsonl, .json or .txt, whichever is most common) are read in name order, column
// `dataset_field` of every row, NOT right-stripped, and shuffled as HF datasets' Dataset.shuffle(seed)
// does (numpy_permutation), which is what the reference tool does for pile-10k. Other registered
// names are read the same generic way (with a warning: their special recipes are not reproduced).
// Local .parquet files (and folders of them) are read too (io/parquet_reader.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class BpeTokenizer;
struct TokenizerConfig;

struct CalibrationOptions {
    std::string dataset = "NeelNanda/pile-10k";  // the grammar: name[:key=value...][,name2...]
    int nsamples = 128;
    int seqlen = 2048;
    uint64_t seed = 42;
    std::string dataset_field = "text";           // JSONL/JSON field (--dataset_field)
};

// Where one calibration sample came from.
struct CalibrationSampleOrigin {
    int dataset = 0;          // index of the entry in the --dataset list, as given
    std::string file;         // the file holding the (first) document of the sample
    size_t document = 0;      // the document's index in the dataset's file order (0-based; a folder
                              // counts over all its files in name order)
    size_t line = 0;          // 1-based line in `file` (.txt/.jsonl), or element index + 1 (.json)
};

struct CalibrationSet {
    std::vector<std::vector<int32_t>> samples;    // each exactly `seqlen` token ids
    std::vector<CalibrationSampleOrigin> origins; // one per sample
    std::vector<std::string> warnings;            // e.g. nsamples reduced, num reduced
    std::string description;                      // human-readable summary of what was selected
};

// Builds the calibration set. Throws autoround::Error for a missing or unreadable source, invalid
// JSON (file and line named), a missing field, an empty dataset, no sample of >= seqlen tokens
// (dataset and seqlen named), a Hub name, or a bad --dataset string.
CalibrationSet build_calibration_set(const CalibrationOptions& opt, const BpeTokenizer& tok,
                                     const TokenizerConfig& tcfg /* chat template, bos/eos for concat */);

// ---- building blocks (public for tests and for the CLI's help text) ---------------------------

// One entry of the --dataset grammar.
struct DatasetSpec {
    std::string name;                          // a path or a Hub name
    std::optional<int> num;                    // num=N
    bool concat = false;                       // concat[=true|false]
    bool apply_chat_template = false;          // apply_chat_template[=true|false]
    std::optional<std::string> system_prompt;  // system_prompt=... (implies apply_chat_template)
    std::vector<std::string> split;            // split=a+b (meaningful for Hub datasets only)
    bool shuffle = true;                       // shuffle[=true|false] (ours)
};

// Parses "name[:key=value...][,name2...]". Commas separate datasets and colons separate keys, so
// neither can appear in a path or a value. Errors name the entry and list the valid keys.
std::vector<DatasetSpec> parse_dataset_spec(std::string_view spec);

// The reference filter: true if `ids` has at least seqlen tokens and the last of its first seqlen
// tokens occurs at most seqlen/2 times among them (the repetition check applies for seqlen > 2).
bool calibration_sample_ok(std::span<const int32_t> ids, int seqlen);

// order[k] = index of the element that Python's random.Random(seed).shuffle(list(range(n))) puts at
// position k (CPython's MT19937 seeded by init_by_array, _randbelow via getrandbits).
std::vector<size_t> python_random_shuffle_order(size_t n, uint64_t seed);

// numpy.random.default_rng(seed).permutation(n): SeedSequence(seed) -> PCG64 (XSL-RR 128/64),
// Generator.shuffle = Fisher-Yates from the end with masked-rejection bounded draws (buffered
// 32-bit halves below 2^32). HF datasets' Dataset.shuffle(seed) selects rows in this order.
std::vector<size_t> numpy_permutation(size_t n, uint64_t seed);

// The dataset names the reference tool downloads from the Hub (plus their short aliases).
const std::vector<std::string>& registered_hub_datasets();

}  // namespace autoround
