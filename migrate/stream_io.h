// SPDX-License-Identifier: Apache-2.0
// Byte streams for envelope encryption: sources and sinks that never hold a whole file, and an
// output file published atomically only when everything was written (core/file_io.h's atomic
// writes take the whole content at once; this is the streaming form of the same guarantees).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "core/file_io.h"

namespace keyport::migrate {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to buf.size() bytes; returns how many, 0 only at the end.
  virtual Result<std::size_t> read(std::span<std::uint8_t> buf) = 0;
};

// Reads until `buf` is full or the source ends; returns the bytes read.
Result<std::size_t> read_full(ByteSource& source, std::span<std::uint8_t> buf);

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(std::span<const std::uint8_t> data) = 0;
};

// A file descriptor (stdin, a file). Owns it when asked.
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd, bool owned = false) : m_fd(fd), m_owned(owned) {}
  // Opens `path` for reading. kNotFound, kInvalidArgument (a directory), kIo.
  static Result<std::unique_ptr<FdSource>> open(const std::filesystem::path& path);
  ~FdSource() override;
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;
  Result<std::size_t> read(std::span<std::uint8_t> buf) override;

 private:
  int m_fd;
  bool m_owned;
};

class FdSink final : public ByteSink {
 public:
  explicit FdSink(int fd) : m_fd(fd) {}
  Status write(std::span<const std::uint8_t> data) override;

 private:
  int m_fd;
};

// Bytes in memory (tests, small inputs).
class SpanSource final : public ByteSource {
 public:
  // Reads `data`, which must outlive the source.
  explicit SpanSource(std::span<const std::uint8_t> data) : m_data(data) {}
  explicit SpanSource(std::vector<std::uint8_t>&&) = delete;  // would dangle
  Result<std::size_t> read(std::span<std::uint8_t> buf) override;

 private:
  std::span<const std::uint8_t> m_data;
  std::size_t m_pos = 0;
};

class BytesSink final : public ByteSink {
 public:
  Status write(std::span<const std::uint8_t> data) override {
    m_bytes.insert(m_bytes.end(), data.begin(), data.end());
    return {};
  }
  const Bytes& bytes() const { return m_bytes; }

 private:
  Bytes m_bytes;
};

// An output file written without a name (O_TMPFILE in the destination folder; a hidden temporary
// file where the file system lacks it) and published by commit(): fsync, then linkat(2) (create if
// absent: kAlreadyExists when the name appeared meanwhile) or rename(2) with overwrite, then the
// folder is fsynced. Destroyed without commit(), or killed, it leaves nothing behind.
class AtomicFileSink final : public ByteSink {
 public:
  // Checks the destination (kAlreadyExists unless overwrite) and creates the unnamed file.
  static Result<std::unique_ptr<AtomicFileSink>> create(const std::filesystem::path& path,
                                                        const WriteOptions& options = {});
  ~AtomicFileSink() override;
  AtomicFileSink(const AtomicFileSink&) = delete;
  AtomicFileSink& operator=(const AtomicFileSink&) = delete;

  Status write(std::span<const std::uint8_t> data) override;
  Status commit();

 private:
  AtomicFileSink() = default;
  void discard();

  std::filesystem::path m_path;
  std::filesystem::path m_tmp;  // named temporary file, when O_TMPFILE is not available
  int m_fd = -1;
  bool m_overwrite = false;
  unsigned m_mode = 0644;
};

}  // namespace keyport::migrate
