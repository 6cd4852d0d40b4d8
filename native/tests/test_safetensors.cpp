// Safetensors parser on malformed inputs: every defect is an error naming the file and tensor,
// never a crash or an out-of-bounds read (this test also runs under ASan+UBSan).
#include "safetensors.h"
#include "test_util.h"

using namespace longtail;
using nlohmann::json;

static std::map<std::string, TensorView> parse(const std::string& bytes) {
  // Copy into an exactly sized heap buffer so ASan catches any read past the end.
  std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  return parse_safetensors(buf.empty() ? nullptr : buf.data(), buf.size(), "x.safetensors");
}

static std::string with_header(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

int main() {
  const std::vector<TestTensor> good = {
      {"a", "F32", {2, 3}, {1, 2, 3, 4, 5, 6}},
      {"b", "F16", {4}, {1.5f, -2.0f, 0.25f, 65504.0f}},
      {"c", "BF16", {2}, {3.0f, -0.5f}},
  };
  // Valid file round-trips, with conversion.
  {
    std::string bytes = safetensors_bytes(good);
    std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    auto t = parse_safetensors(buf.data(), buf.size(), "x.safetensors");
    CHECK(t.size() == 3);
    CHECK(t["a"].shape == std::vector<int64_t>({2, 3}));
    std::vector<float> f(6);
    tensor_to_f32(t["a"], f.data());
    CHECK(f[5] == 6.0f);
    tensor_to_f32(t["b"], f.data());
    CHECK(f[0] == 1.5f && f[1] == -2.0f && f[2] == 0.25f && f[3] == 65504.0f);
    tensor_to_f32(t["c"], f.data());
    CHECK(f[0] == 3.0f && f[1] == -0.5f);
  }
  // f16 special values.
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(half_to_float(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(std::isinf(half_to_float(0x7c00)));
  CHECK(std::isnan(half_to_float(0x7e00)));
  CHECK(half_to_float(0x8000) == 0.0f && std::signbit(half_to_float(0x8000)));
  CHECK(bf16_to_float(0x3f80) == 1.0f);

  EXPECT_ERROR([] { parse(""); }, "truncated", "x.safetensors");
  EXPECT_ERROR([] { parse("1234567"); }, "truncated");
  {
    std::string b(8, '\0');
    b[5] = 1;  // 2^40
    EXPECT_ERROR([&] { parse(b); }, "header too large", "x.safetensors");
    b = std::string(8, '\0');
    b[0] = char(0xff);
    b[7] = char(0xff);
    EXPECT_ERROR([&] { parse(b); }, "header too large");
  }
  {
    std::string b = with_header("{}");
    b[0] = 100;  // claims 100 header bytes, file has 2
    EXPECT_ERROR([&] { parse(b); }, "truncated");
  }
  EXPECT_ERROR([] { parse(with_header("{\"a\": ")); }, "invalid JSON");
  EXPECT_ERROR([] { parse(with_header("[1,2]")); }, "invalid JSON");
  EXPECT_ERROR([] { parse(with_header("\"str\"")); }, "invalid JSON");
  EXPECT_ERROR([] { parse(with_header(std::string(200000, '[') + std::string(200000, ']'))); }, "invalid JSON");
  EXPECT_ERROR([] { parse(with_header("{\"t\": 5}")); }, "'t'", "invalid JSON");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'", "dtype");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F12", "shape": [1], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'", "dtype");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", "xxxx")); }, "dtype");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'", "shape");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "xxxx")); }, "shape");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})", "xxxx")); }, "shape");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1000000, 1000000, 1000000, 1000000], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "xxxx")); }, "'t'", "shape");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", "xxxx")); }, "data_offsets");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", "xxxx")); }, "data_offsets");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "xxxx")); }, "'t'");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", "xxxx")); }, "'t'", "out of bounds");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551615]}})", "xxxx")); }, "'t'");
  EXPECT_ERROR([] { parse(with_header(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "u": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", "xxxxxxxx")); }, "overlap", "'u'", "'t'");
  EXPECT_ERROR([] { parse(with_header(R"({"__metadata__": 5})")); }, "__metadata__");
  // Metadata and empty tensors are fine; a zero-length tensor overlaps nothing.
  {
    auto t = parse(with_header(R"({"__metadata__": {"format": "pt"}, "e": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", "xxxx"));
    CHECK(t.size() == 2);
  }
  // Truncating a valid file at every length never crashes and always errors.
  {
    std::string bytes = safetensors_bytes(good);
    int errors = 0;
    for (size_t n = 0; n < bytes.size(); ++n) {
      try {
        parse(bytes.substr(0, n));
      } catch (const Error&) {
        ++errors;
      }
    }
    CHECK(errors == int(bytes.size()));
  }
  // Files.
  EXPECT_ERROR([] { open_safetensors("/nonexistent/model.safetensors"); }, "/nonexistent/model.safetensors");
  EXPECT_ERROR([] { open_safetensors("/tmp"); }, "/tmp", "not a regular file");
  {
    std::string d = temp_dir("st");
    write_file(d + "/empty.safetensors", "");
    EXPECT_ERROR([&] { open_safetensors(d + "/empty.safetensors"); }, "empty.safetensors", "truncated");
  }
  return finish("test_safetensors");
}
