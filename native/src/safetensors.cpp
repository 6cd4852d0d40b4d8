// Safe safetensors reader: see safetensors.h.
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "longtail/engine.h"

namespace longtail {

using json = nlohmann::json;

const char* dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kI16: return "I16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kBool: return "BOOL";
    default: return "?";
  }
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::kF64: case DType::kI64: return 8;
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: case DType::kI16: return 2;
    default: return 1;
  }
}

static bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16},   {"BF16", DType::kBF16}, {"F64", DType::kF64},
      {"I64", DType::kI64}, {"I32", DType::kI32},   {"I16", DType::kI16},   {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool},
  };
  for (const auto& e : table) {
    if (s == e.first) { *out = e.second; return true; }
  }
  return false;
}

uint64_t TensorView::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

[[noreturn]] static void fail(const std::string& file, const std::string& tensor,
                              const std::string& what) {
  if (tensor.empty()) throw Error(file + ": " + what);
  throw Error(file + ": tensor '" + tensor + "': " + what);
}

std::map<std::string, TensorView> parse_safetensors(const uint8_t* bytes, size_t size,
                                                   const std::string& file) {
  if (size < 8) fail(file, "", "truncated: file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes) {
    fail(file, "", "header too large: " + std::to_string(n) + " bytes (limit " +
                       std::to_string(kMaxHeaderBytes) + ")");
  }
  if (n > size - 8) {
    fail(file, "", "truncated: header claims " + std::to_string(n) + " bytes but the file has " +
                       std::to_string(size - 8) + " after the length");
  }
  const char* hdr = reinterpret_cast<const char*>(bytes + 8);
  json j = json::parse(hdr, hdr + n, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(file, "", "invalid JSON in header");
  if (!j.is_object()) fail(file, "", "invalid JSON in header: top level is not an object");

  const uint64_t data_size = size - 8 - n;
  const uint8_t* data = bytes + 8 + n;
  std::map<std::string, TensorView> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object() && !it->is_null()) fail(file, "", "invalid JSON: __metadata__ is not an object");
      continue;
    }
    const json& e = it.value();
    if (!e.is_object()) fail(file, name, "invalid JSON: entry is not an object");
    auto dt = e.find("dtype");
    if (dt == e.end() || !dt->is_string()) fail(file, name, "invalid JSON: missing dtype");
    TensorView t;
    t.name = name;
    if (!parse_dtype(dt->get<std::string>(), &t.dtype)) {
      fail(file, name, "unknown dtype '" + dt->get<std::string>() + "'");
    }
    auto sh = e.find("shape");
    if (sh == e.end() || !sh->is_array()) fail(file, name, "invalid JSON: missing shape");
    if (sh->size() > 8) fail(file, name, "shape has " + std::to_string(sh->size()) + " dimensions (max 8)");
    // numel * elem must fit; cap each dim and the product by the data size to avoid overflow.
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_integer() && !d.is_number_unsigned()) fail(file, name, "shape entries must be non-negative integers");
      if (d.is_number_integer() && d.get<int64_t>() < 0) fail(file, name, "shape has a negative dimension");
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40)) fail(file, name, "shape dimension " + std::to_string(v) + " is out of bounds of any file");
      t.shape.push_back(static_cast<int64_t>(v));
      if (v != 0 && numel > (1ull << 50) / v) fail(file, name, "shape is too large (out of bounds of the file)");
      numel *= v;
    }
    auto off = e.find("data_offsets");
    if (off == e.end() || !off->is_array() || off->size() != 2) fail(file, name, "invalid JSON: data_offsets must be [begin, end]");
    for (const json& d : *off) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
        fail(file, name, "data_offsets must be non-negative integers");
      }
    }
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    if (t.begin > t.end) fail(file, name, "data_offsets begin " + std::to_string(t.begin) + " > end " + std::to_string(t.end));
    if (t.end > data_size) {
      fail(file, name, "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                           "] out of bounds: data section is " + std::to_string(data_size) + " bytes (truncated file?)");
    }
    const uint64_t want = numel * dtype_size(t.dtype);
    if (want != t.end - t.begin) {
      fail(file, name, "shape × dtype needs " + std::to_string(want) + " bytes but data_offsets span " +
                           std::to_string(t.end - t.begin));
    }
    t.data = data + t.begin;
    out.emplace(name, std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const TensorView*> order;
  order.reserve(out.size());
  for (const auto& kv : out) order.push_back(&kv.second);
  std::sort(order.begin(), order.end(), [](const TensorView* a, const TensorView* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorView* p = order[i - 1];
    const TensorView* q = order[i];
    if (q->begin < p->end && q->end > q->begin && p->end > p->begin) {
      fail(file, q->name, "data overlaps tensor '" + p->name + "' ([" + std::to_string(q->begin) + ", " +
                              std::to_string(q->end) + ") vs [" + std::to_string(p->begin) + ", " +
                              std::to_string(p->end) + "))");
    }
  }
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path + ": mmap failed: " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::unique_ptr<SafetensorsFile> open_safetensors(const std::string& path) {
  auto f = std::make_unique<SafetensorsFile>();
  f->map = std::make_unique<MappedFile>(path);
  static const uint8_t kEmpty[1] = {0};
  f->tensors = parse_safetensors(f->map->data() ? f->map->data() : kEmpty, f->map->size(), path);
  return f;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      bits = sign | ((127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void tensor_to_f32(const TensorView& t, float* out) {
  const uint64_t n = t.numel();
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out, t.data, n * 4);
      break;
    case DType::kF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      break;
    case DType::kBF16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = bf16_to_float(h);
      }
      break;
    default:
      throw Error("tensor '" + t.name + "': dtype " + dtype_name(t.dtype) + " is not a float type (want F32, F16 or BF16)");
  }
}

}  // namespace longtail
