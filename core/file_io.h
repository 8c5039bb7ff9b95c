// SPDX-License-Identifier: Apache-2.0
// File I/O that loses nothing: bounded reads, atomic writes that never clobber unless asked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

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

// Writes `data` to an unnamed file in the destination folder (O_TMPFILE; a named temporary file
// where the file system lacks it), fsyncs it, then publishes it under `path`: with linkat(2) when
// overwrite is false (atomic "create if absent": kAlreadyExists if the path exists, even if it
// appeared meanwhile), by rename(2) otherwise. Nothing is left behind on any failure path, nor
// after a crash; the folder is fsynced after publishing.
Status write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data,
                         const WriteOptions& options = {});
inline Status write_file_atomic(const std::filesystem::path& path, std::string_view text,
                                const WriteOptions& options = {}) {
  return write_file_atomic(path, as_bytes(text), options);
}

// Writes many files with the guarantees of write_file_atomic but one file-system sync per commit
// instead of one per file: stage() writes each file's bytes to an unnamed file (O_TMPFILE) in its
// destination's folder (a named temporary file where the file system lacks O_TMPFILE); commit()
// syncs the file system once (syncfs), then publishes every staged file under its name and fsyncs
// each folder once. Files staged but not committed vanish with abort(), the destructor, or a crash,
// so an interrupted batch leaves no partial output. Keeps one descriptor open per staged file.
// Not thread-safe: give each thread its own writer.
class AtomicBatchWriter {
 public:
  AtomicBatchWriter() = default;
  AtomicBatchWriter(const AtomicBatchWriter&) = delete;
  AtomicBatchWriter& operator=(const AtomicBatchWriter&) = delete;
  ~AtomicBatchWriter();

  Status stage(const std::filesystem::path& path, std::span<const std::uint8_t> data,
               const WriteOptions& options = {});
  // Publishes everything staged. Returns one Status per staged file, in staging order (a file whose
  // destination appeared meanwhile gets kAlreadyExists and is not published).
  std::vector<Status> commit();
  void abort();
  std::size_t staged() const { return m_staged.size(); }

 private:
  struct Staged {
    int fd = -1;                // an O_TMPFILE file, or -1
    std::filesystem::path tmp;  // a named temporary file when O_TMPFILE is not available
    std::filesystem::path path;
    bool overwrite = false;
  };
  std::vector<Staged> m_staged;
};

// kAlreadyExists if `path` exists and overwrite is false; lets commands refuse before they do
// expensive or irreversible work. write_file_atomic still re-checks at the end.
Status check_output_path(const std::filesystem::path& path, bool overwrite);

}  // namespace keyport
