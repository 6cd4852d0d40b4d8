// libFuzzer target: the safetensors parser on arbitrary bytes. Any input must either parse or
// throw longtail::Error; ASan/UBSan turn every out-of-bounds read or UB into a crash.
#include <cstdint>
#include <cstring>
#include <vector>

#include "longtail/engine.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exactly sized copy, so reading one byte past the end is caught.
  std::vector<uint8_t> buf(data, data + size);
  try {
    auto tensors = longtail::parse_safetensors(buf.data(), buf.size(), "fuzz.safetensors");
    std::vector<float> out;
    for (const auto& kv : tensors) {
      const auto& t = kv.second;
      if ((t.dtype == longtail::DType::kF32 || t.dtype == longtail::DType::kF16 ||
           t.dtype == longtail::DType::kBF16) && t.numel() < (1u << 16)) {
        out.resize(t.numel());
        longtail::tensor_to_f32(t, out.data());
      }
    }
  } catch (const longtail::Error&) {
  }
  return 0;
}
