// SPDX-License-Identifier: Apache-2.0
// Replays a fuzz target over files and folders of inputs (its seed corpus, crash files): the
// target built as an ordinary test, with no libFuzzer needed. Any escaping exception aborts, and
// so does an input that leaves errors on the thread's OpenSSL error queue: a stale error there ends
// up in the message of some later, unrelated failure (drain_errors() joins the whole queue).
#include <openssl/err.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
void check_error_queue(const std::filesystem::path& input) {
  if (const unsigned long e = ERR_peek_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    std::fprintf(stderr, "replay: %s: left on the OpenSSL error queue: %s\n", input.c_str(), buf);
    std::abort();
  }
}
}  // namespace

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
      check_error_queue(f);
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
    if (!bytes.empty()) {
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size() - 1);
      check_error_queue(f);
    }
  }
  std::printf("replayed %zu inputs (and %zu truncations) without a finding\n", files.size(),
              files.size());
  return 0;
}
