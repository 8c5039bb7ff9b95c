// SPDX-License-Identifier: Apache-2.0
// Replays a fuzz target over files and folders of inputs (its seed corpus, crash files): the
// target built as an ordinary test, with no libFuzzer needed. Any escaping exception aborts.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        if (e.is_regular_file())
          files.push_back(e.path());
      }
    } else if (fs::exists(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "replay: %s does not exist\n", p.c_str());
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 2;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    try {
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "replay: %s: exception escaped: %s\n", f.c_str(), e.what());
      std::abort();
    } catch (...) {
      std::fprintf(stderr, "replay: %s: unknown exception escaped\n", f.c_str());
      std::abort();
    }
  }
  // Each input also replayed truncated by one byte: a cheap extra set of malformed inputs.
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    if (!bytes.empty())
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size() - 1);
  }
  std::printf("replayed %zu inputs (and %zu truncations) without a finding\n", files.size(),
              files.size());
  return 0;
}
