// tests/model/reference_ids.h — the I64 tensors of ../shared/reference/*.safetensors (token ids, positions,
// grids) as int32, for the golden tests that read them through the project's TensorStore.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

namespace autoround::test {

inline std::vector<int32_t> reference_ids(const TensorStore& st, const std::string& name) {
    const TensorInfo& t = st.get(name);
    if (t.dtype != DType::I64) fail("reference tensor ", name, " is ", dtype_name(t.dtype), ", expected I64");
    std::vector<int32_t> v(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) {
        int64_t x;
        std::memcpy(&x, t.data + i * 8, 8);
        v[i] = static_cast<int32_t>(x);
    }
    return v;
}

}  // namespace autoround::test
