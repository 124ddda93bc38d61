// export/gguf_mmproj.h — writes the vision tower of a Qwen3-VL checkpoint as an `mmproj` GGUF (issue 7).
//
// Why: llama.cpp runs a vision-language model from two files — the language model GGUF (written by
// export/gguf_export.h) and a separate "mmproj" GGUF holding the vision encoder and its projector, which
// the multimodal tools (libmtmd: llama-mtmd-cli, llama-server --mmproj) load through tools/mtmd/clip.cpp.
// The vision tower is not quantized by autoround (the default keeps non-text modules in 16 bit), so this
// file is a plain float conversion: F16 (the llama.cpp default), BF16 or F32.
//
// The file, as llama.cpp's convert_hf_to_gguf.py (MmprojModel + Qwen3VLVisionModel) writes it and
// clip.cpp (clip_model_loader::load_hparams / load_tensors, PROJECTOR_TYPE_QWEN3VL) reads it:
//
//   metadata (C = config.json, V = its vision_config, T = its text_config, P = the image processor config)
//     general.architecture                     STRING  "clip"
//     general.type                             STRING  "mmproj"
//     general.name                             STRING  model name (default: the source folder's name)
//     general.file_type                        UINT32  0 (F32), 1 (F16), 32 (BF16)
//     general.quantization_version             UINT32  2
//     clip.has_vision_encoder                  BOOL    true
//     clip.projector_type                      STRING  "qwen3vl_merger"
//     clip.use_gelu                            BOOL    true
//     clip.vision.projection_dim               UINT32  T.hidden_size (= V.out_hidden_size, checked)
//     clip.vision.image_size                   UINT32  V.image_size, else sqrt(V.num_position_embeddings) *
//                                                      V.patch_size (the learned position grid in pixels)
//     clip.vision.patch_size                   UINT32  V.patch_size
//     clip.vision.embedding_length             UINT32  V.hidden_size
//     clip.vision.feed_forward_length          UINT32  V.intermediate_size
//     clip.vision.block_count                  UINT32  V.depth
//     clip.vision.attention.head_count         UINT32  V.num_heads
//     clip.vision.attention.layer_norm_epsilon FLOAT32 T.rms_norm_eps (the converter's choice; the tower's
//                                                      LayerNorms use 1e-6, equal for released models)
//     clip.vision.image_mean / image_std       ARRAY of FLOAT32 [3]  P.image_mean / P.image_std
//     clip.vision.spatial_merge_size           UINT32  V.spatial_merge_size
//     clip.vision.is_deepstack_layers          ARRAY of BOOL [depth]: true at V.deepstack_visual_indexes
//   P is preprocessor_config.json, overridden key by key by processor_config.json (its "image_processor"
//   object too), as newer converters merge them.
//
//   tensors (HF name under "model.visual." -> GGUF name; ne innermost first; type for F16 / BF16 / F32 files)
//     patch_embed.proj.weight [H,C,2,p,p] -> v.patch_embd.weight   = [:, :, 0]  [p,p,C,H]  F16 / F32 / F32
//                                         -> v.patch_embd.weight.1 = [:, :, 1]  [p,p,C,H]  F16 / F32 / F32
//         (the Conv3d over 2 frames is two Conv2d kernels summed; llama.cpp feeds a still image to both)
//     patch_embed.proj.bias                -> v.patch_embd.bias                   [H]       F32
//     pos_embed.weight                     -> v.position_embd.weight              [H, P]    F32
//     blocks.N.norm1.{weight,bias}         -> v.blk.N.ln1.{weight,bias}           [H]       F32
//     blocks.N.attn.qkv.weight             -> v.blk.N.attn_qkv.weight (fused)     [H, 3H]   file type
//     blocks.N.attn.qkv.bias               -> v.blk.N.attn_qkv.bias               [3H]      F32
//     blocks.N.attn.proj.{weight,bias}     -> v.blk.N.attn_out.{weight,bias}      [H, H]    file type / F32
//     blocks.N.norm2.{weight,bias}         -> v.blk.N.ln2.{weight,bias}           [H]       F32
//     blocks.N.mlp.linear_fc1.{w,b}        -> v.blk.N.ffn_up.{weight,bias}        [H, I]    file type / F32
//     blocks.N.mlp.linear_fc2.{w,b}        -> v.blk.N.ffn_down.{weight,bias}      [I, H]    file type / F32
//     deepstack_merger_list.k.norm.{w,b}   -> v.deepstack.L.norm.{weight,bias}    [4H]      F32
//     deepstack_merger_list.k.linear_fc1.* -> v.deepstack.L.fc1.{weight,bias}     [4H, 4H]  file type / F32
//     deepstack_merger_list.k.linear_fc2.* -> v.deepstack.L.fc2.{weight,bias}     [4H, O]   file type / F32
//         (L = V.deepstack_visual_indexes[k], the ViT block the merger taps — clip.cpp looks it up per block)
//     merger.norm.{weight,bias}            -> v.post_ln.{weight,bias}             [H]       F32
//     merger.linear_fc1.{weight,bias}      -> mm.0.{weight,bias}                  [4H, 4H]  file type / F32
//     merger.linear_fc2.{weight,bias}      -> mm.2.{weight,bias}                  [4H, O]   file type / F32
//   (4 = spatial_merge_size², O = out_hidden_size.) The type rules are gguf-py's prepare_tensors: 1-D
//   tensors and the position table are F32; MmprojModel.tensor_force_quant makes the patch kernels F16 in F16
//   files and F32 otherwise; every other 2-D weight takes the file type. Values are the source float32
//   expansion rounded to nearest-even (numpy astype(float16) / gguf-py's bf16 rounding), so bf16 -> BF16 and
//   f16 -> F16 are bit copies.
//
// Sources: ggml-org/llama.cpp convert_hf_to_gguf.py (ModelBase.prepare_tensors, MmprojModel,
// Qwen3VLVisionModel), gguf-py/gguf/constants.py (TENSOR_NAMES, Keys.Clip*) and tensor_mapping.py,
// tools/mtmd/clip-impl.h (KEY_*, TN_*), tools/mtmd/clip.cpp and tools/mtmd/models/qwen3vl.cpp, read in
// 2025-2026 revisions. Caveats: llama.cpp supports temporal_patch_size 2 only (checked); newer clip.cpp
// finds deepstack layers by tensor presence and does not need is_deepstack_layers (written anyway, as the
// converter does); the converter reads layer_norm_epsilon from the text config, which may change.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace autoround {

// The mmproj file type (the vision tower is written unquantized).
enum class GgufMmprojType { F16, BF16, F32 };

// "f16"/"fp16"/"float16", "bf16"/"bfloat16", "f32"/"fp32"/"float32" (case-insensitive); Error otherwise.
GgufMmprojType parse_gguf_mmproj_type(std::string_view name);
std::string_view gguf_mmproj_type_label(GgufMmprojType t);  // llama.cpp's spelling: "F16", "BF16", "F32"
uint32_t gguf_mmproj_file_type_id(GgufMmprojType t);        // general.file_type: 1, 32, 0

// llama.cpp's mmproj file name: "mmproj-<model basename>-<LABEL>.gguf", e.g. "mmproj-qwen3-vl-nano-F16.gguf".
std::string gguf_mmproj_file_name(const std::string& model_name_or_path, GgufMmprojType t);

struct GgufMmprojTensor {
    std::string gguf_name, hf_name;
    uint32_t type = 0;            // ggml type id (GgmlType::F32 / F16 / BF16)
    std::vector<int64_t> ne;      // innermost first
};

struct GgufMmprojResult {
    std::filesystem::path file;
    std::vector<GgufMmprojTensor> tensors;  // in file order
};

// Checks, without writing, that the source folder can become an mmproj GGUF: a
// Qwen3VLForConditionalGeneration config.json with a valid vision_config (temporal_patch_size 2,
// out_hidden_size = text hidden_size), image_mean / image_std in preprocessor_config.json or
// processor_config.json, every vision tensor present with the config's shape and a float dtype, and no
// unknown model.visual.* tensor. Throws Error naming the file / tensor and what to do.
void validate_gguf_mmproj(const std::filesystem::path& source_dir, const TensorStore& source, GgufMmprojType t);

// Writes `out_file` (through "<out_file>.tmp" renamed into place). `model_name` -> general.name
// ("" = the source folder's name). Values that overflow float16 are an Error (export bf16 instead).
GgufMmprojResult write_gguf_mmproj(const std::filesystem::path& source_dir, const TensorStore& source,
                                   GgufMmprojType t, const std::string& model_name,
                                   const std::filesystem::path& out_file);

}  // namespace autoround
