// Model and adapter loading: valid folders load; every defect is an error naming the file and the
// tensor or feature.
#include "model_internal.h"
#include "test_util.h"

using namespace longtail;
using nlohmann::json;

int main() {
  const std::string root = temp_dir("loader");
  TinySpec spec;
  spec.qkv_bias = true;
  const std::string base = write_tiny_model(root + "/base", spec);
  auto model = load_model(base);
  CHECK(model->config().hidden == 32 && model->config().layers == 2 && model->config().kv_heads == 2);
  CHECK(model->config().qkv_bias);
  CHECK(model->weights().layers[1].bq != nullptr);

  // bf16 and tied.
  {
    TinySpec s;
    s.dtype = "BF16";
    s.tied = true;
    auto m = load_model(write_tiny_model(root + "/bf16", s));
    CHECK(m->weights().lm_head == m->weights().embed);
    CHECK(m->weights().bytes_converted > 0);
  }
  // Sharded.
  {
    std::string d = root + "/sharded";
    mkdir_p(d);
    auto ts = tiny_tensors(spec);
    std::vector<TestTensor> a(ts.begin(), ts.begin() + ts.size() / 2), b(ts.begin() + ts.size() / 2, ts.end());
    write_file(d + "/config.json", tiny_config(spec).dump());
    write_file(d + "/model-00001-of-00002.safetensors", safetensors_bytes(a));
    write_file(d + "/model-00002-of-00002.safetensors", safetensors_bytes(b));
    json idx = {{"metadata", json::object()}, {"weight_map", json::object()}};
    for (auto& t : a) idx["weight_map"][t.name] = "model-00001-of-00002.safetensors";
    for (auto& t : b) idx["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    write_file(d + "/model.safetensors.index.json", idx.dump());
    auto m = load_model(d);
    CHECK(m->weights().file_names.size() == 2);
    // Index naming a missing tensor / a path outside the folder / a missing shard.
    json bad = idx;
    bad["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
    write_file(d + "/model.safetensors.index.json", bad.dump());
    EXPECT_ERROR([&] { load_model(d); }, "missing tensor", "model.extra.weight");
    bad = idx;
    bad["weight_map"]["model.norm.weight"] = "../evil.safetensors";
    write_file(d + "/model.safetensors.index.json", bad.dump());
    EXPECT_ERROR([&] { load_model(d); }, "model.norm.weight", "file name");
    bad = idx;
    bad["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
    write_file(d + "/model.safetensors.index.json", bad.dump());
    EXPECT_ERROR([&] { load_model(d); }, "model-00003-of-00002.safetensors");
    write_file(d + "/model.safetensors.index.json", "{not json");
    EXPECT_ERROR([&] { load_model(d); }, "invalid JSON", "model.safetensors.index.json");
  }
  // Config defects.
  {
    std::string d = root + "/cfg";
    mkdir_p(d);
    write_file(d + "/model.safetensors", safetensors_bytes(tiny_tensors(spec)));
    EXPECT_ERROR([&] { load_model(d); }, "config.json");
    write_file(d + "/config.json", "{\"hidden_size\": 32,");
    EXPECT_ERROR([&] { load_model(d); }, "config.json", "invalid JSON");
    json c = tiny_config(spec);
    c.erase("num_hidden_layers");
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "config.json", "num_hidden_layers");
    c = tiny_config(spec);
    c["rope_scaling"] = {{"type", "yarn"}, {"factor", 4}};
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "yarn", "not supported");
    c = tiny_config(spec);
    c["num_key_value_heads"] = 3;
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "num_key_value_heads");
    c = tiny_config(spec);
    c["hidden_size"] = 64;  // tensors were written for 32
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "shape", "model.embed_tokens.weight", "model.safetensors");
    c = tiny_config(spec);
    c["num_hidden_layers"] = 1;  // file has layer 1 tensors
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "layer", "model.layers.1.");
    c = tiny_config(spec);
    c["num_hidden_layers"] = 3;  // layer 2 missing
    write_file(d + "/config.json", c.dump());
    EXPECT_ERROR([&] { load_model(d); }, "missing tensor", "model.layers.2.");
    c = tiny_config(spec);
    c["tie_word_embeddings"] = false;
    c["model_type"] = "llama";
    c["attention_bias"] = false;
    write_file(d + "/config.json", c.dump());
    load_model(d);  // extra bias tensors are ignored when the config has none
  }
  // Tensor dtype defects.
  {
    std::string d = root + "/dtype";
    mkdir_p(d);
    write_file(d + "/config.json", tiny_config(spec).dump());
    auto ts = tiny_tensors(spec);
    ts[3].dtype = "I32";
    write_file(d + "/model.safetensors", safetensors_bytes(ts));
    EXPECT_ERROR([&] { load_model(d); }, "dtype", ts[3].name);
    ts = tiny_tensors(spec);
    ts.pop_back();  // lm_head
    write_file(d + "/model.safetensors", safetensors_bytes(ts));
    EXPECT_ERROR([&] { load_model(d); }, "missing tensor", "lm_head.weight");
  }

  // Adapters.
  TinyAdapterSpec as;
  as.r = 4;
  as.alpha = 8;
  as.rank_pattern = {{"q_proj", 2}, {"model.layers.1.mlp.down_proj", 3}};
  as.alpha_pattern = {{"v_proj", 6}};
  auto ad = load_adapter(write_tiny_adapter(root + "/ad", spec, as), *model);
  {
    const auto& w = ad->weights();
    CHECK(w.layers[0][kQ].rank == 2);
    CHECK_NEAR(w.layers[0][kQ].scale, 8.0 / 2, 1e-6);
    CHECK(w.layers[0][kDown].rank == 4 && w.layers[1][kDown].rank == 3);
    CHECK_NEAR(w.layers[0][kV].scale, 6.0 / 4, 1e-6);
    CHECK_NEAR(w.layers[0][kK].scale, 8.0 / 4, 1e-6);
  }
  {
    TinyAdapterSpec r = as;
    r.rslora = true;
    auto a = load_adapter(write_tiny_adapter(root + "/rs", spec, r), *model);
    CHECK_NEAR(a->weights().layers[0][kK].scale, 8.0 / 2.0, 1e-6);
    CHECK_NEAR(a->weights().layers[0][kQ].scale, 8.0 / std::sqrt(2.0), 1e-6);
  }
  auto adapter_dir = [&](const std::string& name, const std::function<void(json&)>& cfg_edit,
                         const std::function<void(std::vector<TestTensor>&)>& t_edit) {
    TinyAdapterSpec a;
    std::string d = root + "/" + name;
    mkdir_p(d);
    json c = tiny_adapter_config(a);
    if (cfg_edit) cfg_edit(c);
    auto ts = tiny_adapter_tensors(spec, a);
    if (t_edit) t_edit(ts);
    write_file(d + "/adapter_config.json", c.dump());
    write_file(d + "/adapter_model.safetensors", safetensors_bytes(ts));
    return d;
  };
  std::string d;
  d = adapter_dir("dora", [](json& c) { c["use_dora"] = true; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "use_dora is not supported", "adapter_config.json");
  d = adapter_dir("mts", [](json& c) { c["modules_to_save"] = {"lm_head"}; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "modules_to_save", "not supported");
  d = adapter_dir("fifo", [](json& c) { c["fan_in_fan_out"] = true; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "fan_in_fan_out", "not supported");
  d = adapter_dir("bias", [](json& c) { c["bias"] = "all"; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "bias", "not supported");
  d = adapter_dir("emb", [](json& c) { c["target_modules"] = {"q_proj", "embed_tokens"}; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "embed_tokens", "not supported");
  d = adapter_dir("rank0", [](json& c) { c["r"] = 0; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "rank");
  d = adapter_dir("rank300", [](json& c) { c["r"] = 300; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "rank");
  d = adapter_dir("rankmis", [](json& c) { c["r"] = 8; }, nullptr);
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "rank", "lora_A");
  d = adapter_dir("badjson", nullptr, nullptr);
  write_file(d + "/adapter_config.json", "{");
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "invalid JSON", "adapter_config.json");
  d = adapter_dir("missb", nullptr, [](std::vector<TestTensor>& ts) {
    ts.erase(ts.begin() + 1);  // layer 0 q_proj lora_B
  });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "missing tensor", "layers.0.self_attn.q_proj.lora_B.weight");
  d = adapter_dir("missmod", nullptr, [](std::vector<TestTensor>& ts) { ts.erase(ts.begin(), ts.begin() + 2); });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "missing tensor", "layers.0.self_attn.q_proj.lora_A.weight");
  d = adapter_dir("layer", nullptr, [](std::vector<TestTensor>& ts) {
    TestTensor t = ts[0];
    t.name = "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight";
    ts.push_back(t);
  });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "layer", "layers.7.");
  d = adapter_dir("shape", nullptr, [](std::vector<TestTensor>& ts) {
    ts[0].shape = {4, 31};
    ts[0].values.resize(4 * 31);
  });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "shape", "layers.0.self_attn.q_proj.lora_A.weight");
  d = adapter_dir("dtype", nullptr, [](std::vector<TestTensor>& ts) { ts[2].dtype = "I32"; });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "dtype", "lora");
  d = adapter_dir("embt", nullptr, [](std::vector<TestTensor>& ts) {
    ts.push_back({"base_model.model.model.embed_tokens.lora_embedding_A", "F32", {4, 50}, std::vector<float>(200)});
  });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "not supported", "embed_tokens");
  d = adapter_dir("mag", nullptr, [](std::vector<TestTensor>& ts) {
    ts.push_back({"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", "F32", {32}, std::vector<float>(32)});
  });
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "use_dora", "not supported");
  d = adapter_dir("nost", nullptr, nullptr);
  ::unlink((d + "/adapter_model.safetensors").c_str());
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "adapter_model.safetensors");
  write_file(d + "/adapter_model.bin", "PK");
  EXPECT_ERROR([&] { load_adapter(d, *model); }, "adapter_model.bin", "not supported");
  d = adapter_dir("alllin", [](json& c) { c["target_modules"] = "all-linear"; }, nullptr);
  CHECK(load_adapter(d, *model)->weights().targets.size() == 7);
  d = adapter_dir("regex", [](json& c) { c["target_modules"] = ".*\\.(q_proj|v_proj)"; },
                  [](std::vector<TestTensor>& ts) {
                    std::vector<TestTensor> keep;
                    for (auto& t : ts)
                      if (t.name.find("q_proj") != std::string::npos || t.name.find("v_proj") != std::string::npos) keep.push_back(t);
                    ts = keep;
                  });
  CHECK(load_adapter(d, *model)->weights().targets.size() == 2);
  return finish("test_loader");
}
