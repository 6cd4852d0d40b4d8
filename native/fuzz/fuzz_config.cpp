// libFuzzer target: config.json parsing on arbitrary text.
#include <cstdint>
#include <string>

#include "longtail/engine.h"
#include "model_internal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    longtail::parse_model_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
  } catch (const longtail::Error&) {
  }
  return 0;
}
