// SPDX-License-Identifier: Apache-2.0
// File I/O that loses nothing: bounded reads, atomic writes that never clobber unless asked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/encoding.h"
#include "core/error.h"
#include "core/secret.h"

namespace keyport {

// Reads a whole file. kNotFound if absent, kInvalidArgument if larger than max_bytes or not a
// regular file, kIo otherwise.
Result<Bytes> read_file(const std::filesystem::path& path, std::size_t max_bytes = 16u << 20);
Result<std::string> read_text_file(const std::filesystem::path& path,
                                   std::size_t max_bytes = 16u << 20);
// For key files and PIN files: the bytes go straight into SecretBytes.
Result<SecretBytes> read_secret_file(const std::filesystem::path& path,
                                     std::size_t max_bytes = 1u << 20);

struct WriteOptions {
  bool overwrite = false;  // --force
  unsigned mode = 0644;    // permission bits of the final file
};

// Writes `data` to a temporary file in the same directory, fsyncs it, then publishes it under
// `path`: with link(2) when overwrite is false (atomic "create if absent": kAlreadyExists if the
// path exists, even if it appeared meanwhile), with rename(2) otherwise. The temporary file is
// removed on every failure path; the directory is fsynced after publishing.
Status write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data,
                         const WriteOptions& options = {});
inline Status write_file_atomic(const std::filesystem::path& path, std::string_view text,
                                const WriteOptions& options = {}) {
  return write_file_atomic(path, as_bytes(text), options);
}

// kAlreadyExists if `path` exists and overwrite is false; lets commands refuse before they do
// expensive or irreversible work. write_file_atomic still re-checks at the end.
Status check_output_path(const std::filesystem::path& path, bool overwrite);

}  // namespace keyport
