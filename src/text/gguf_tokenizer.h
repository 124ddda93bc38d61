// text/gguf_tokenizer.h — the byte-level BPE tokenizer stored in a GGUF file's tokenizer.ggml.* metadata
// (docs/checkpoint-formats.md §5.2: model "gpt2", pre "qwen2", tokens, token_type, merges).
//
// How: the GGUF keys hold exactly what tokenizer.json's model.vocab / model.merges / added_tokens hold
// (NORMAL tokens = the BPE vocab, CONTROL = special added tokens, USER_DEFINED = other added tokens,
// UNUSED = "[PAD<id>]" fillers, skipped). We rebuild that tokenizer.json document — with the pre-tokenizer
// the `pre` name stands for — and hand it to the one validated loader, BpeTokenizer::from_json_text, so a
// GGUF export tokenizes exactly like the folder it came from.
#pragma once

#include <string>

#include "io/gguf.h"
#include "text/bpe_tokenizer.h"

namespace autoround {

// The tokenizer.json text equivalent to the GGUF metadata. Errors name the file and the key (tokenizer
// model other than gpt2, a pre-tokenizer name with no known regex, arrays of different lengths, ...).
std::string gguf_tokenizer_json(const GgufFile& f);

// BpeTokenizer::from_json_text(gguf_tokenizer_json(f), "<file> (GGUF tokenizer)").
BpeTokenizer load_gguf_tokenizer(const GgufFile& f);

}  // namespace autoround
