// Safe safetensors reader.
//
// A safetensors file is: 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
// then the data section. Offsets are relative to the data section. Everything read from the file
// is untrusted: the header length is capped and checked against the file size, the JSON is parsed
// defensively, every dtype/shape/offset is checked, and tensors may not overlap. A violation throws
// longtail::Error naming the file and the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace longtail {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kOther };
const char* dtype_name(DType d);
size_t dtype_size(DType d);

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MiB

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offset in the data section, bytes
  uint64_t end = 0;
  const uint8_t* data = nullptr;  // points into the mapping (may be unaligned)
  uint64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// Parses and validates a whole file image (header + data section) held in memory. `file` is only
// used in messages. The returned views point into `bytes`.
std::map<std::string, TensorView> parse_safetensors(const uint8_t* bytes, size_t size,
                                                   const std::string& file);

// Read-only memory mapping of one file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A mapped and validated safetensors file.
struct SafetensorsFile {
  std::unique_ptr<MappedFile> map;
  std::map<std::string, TensorView> tensors;
};
std::unique_ptr<SafetensorsFile> open_safetensors(const std::string& path);

// Copies a tensor into f32 (converting f16/bf16). `out` must hold numel() floats.
void tensor_to_f32(const TensorView& t, float* out);

float half_to_float(uint16_t h);
float bf16_to_float(uint16_t b);

}  // namespace longtail
