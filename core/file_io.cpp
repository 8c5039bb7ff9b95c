// SPDX-License-Identifier: Apache-2.0
#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "core/random.h"

namespace keyport {
namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const fs::path& path, int err) {
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOENT)
    code = ErrorCode::kNotFound;
  if (err == EEXIST)
    code = ErrorCode::kAlreadyExists;
  if (err == EACCES || err == EPERM)
    code = ErrorCode::kPermissionDenied;
  return Error(code, what + " " + path.string() + ": " + std::strerror(err));
}

class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0)
      ::close(m_fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return m_fd; }
  int release() {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }

 private:
  int m_fd;
};

template <typename Buffer>
Status read_into(const fs::path& path, std::size_t max_bytes, Buffer& out) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0)
    return tl::unexpected(io_error("cannot open", path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return tl::unexpected(io_error("cannot stat", path, errno));
  if (S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + " is a directory, not a file");
  }
  std::size_t size = 0;
  std::uint8_t chunk[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      secure_wipe(chunk, sizeof chunk);
      return tl::unexpected(io_error("cannot read", path, errno));
    }
    if (n == 0)
      break;
    if (size + static_cast<std::size_t>(n) > max_bytes) {
      secure_wipe(chunk, sizeof chunk);
      return make_error(
          ErrorCode::kInvalidArgument,
          path.string() + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(std::span<const std::uint8_t>(chunk, static_cast<std::size_t>(n)));
    size += static_cast<std::size_t>(n);
  }
  secure_wipe(chunk, sizeof chunk);
  return {};
}

struct BytesAppender {
  Bytes& b;
  void append(std::span<const std::uint8_t> s) { b.insert(b.end(), s.begin(), s.end()); }
};

Status fsync_dir(const fs::path& dir) {
  Fd d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0)
    return {};  // best effort: some file systems refuse
  ::fsync(d.get());
  return {};
}

}  // namespace

Result<Bytes> read_file(const fs::path& path, std::size_t max_bytes) {
  Bytes out;
  BytesAppender app{out};
  KEYPORT_TRY(read_into(path, max_bytes, app));
  return out;
}

Result<std::string> read_text_file(const fs::path& path, std::size_t max_bytes) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes b, read_file(path, max_bytes));
  return std::string(b.begin(), b.end());
}

Result<SecretBytes> read_secret_file(const fs::path& path, std::size_t max_bytes) {
  SecretBytes out;
  KEYPORT_TRY(read_into(path, max_bytes, out));
  return out;
}

Status check_output_path(const fs::path& path, bool overwrite) {
  std::error_code ec;
  auto st = fs::symlink_status(path, ec);
  if (!ec && fs::exists(st)) {
    if (fs::is_directory(st)) {
      return make_error(ErrorCode::kInvalidArgument, path.string() + " is a directory");
    }
    if (!overwrite) {
      return make_error(ErrorCode::kAlreadyExists,
                        path.string() + " already exists (use --force to overwrite)");
    }
  }
  fs::path parent = path.parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return make_error(ErrorCode::kNotFound,
                      "output directory " + parent.string() + " does not exist");
  }
  return {};
}

Status write_file_atomic(const fs::path& path, std::span<const std::uint8_t> data,
                         const WriteOptions& options) {
  KEYPORT_TRY(check_output_path(path, options.overwrite));
  fs::path dir = path.parent_path();
  std::string base = path.filename().string();
  if (base.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "output path has no file name");
  }
  fs::path tmp = dir / ("." + base + ".tmp-" + hex_encode(random_bytes(6)));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options.mode & 07777));
  if (fd.get() < 0)
    return tl::unexpected(io_error("cannot create", tmp, errno));
  auto fail = [&](const std::string& what, int err) -> Status {
    ::unlink(tmp.c_str());
    return tl::unexpected(io_error(what, path, err));
  };
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return fail("cannot write", errno);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), options.mode & 07777) != 0)
    return fail("cannot chmod", errno);
  if (::fsync(fd.get()) != 0)
    return fail("cannot fsync", errno);
  if (::close(fd.release()) != 0)
    return fail("cannot close", errno);
  if (options.overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      return fail("cannot rename onto", errno);
  } else {
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) {
        return make_error(ErrorCode::kAlreadyExists,
                          path.string() + " already exists (use --force to overwrite)");
      }
      return tl::unexpected(io_error("cannot publish", path, err));
    }
    ::unlink(tmp.c_str());
  }
  return fsync_dir(dir);
}

}  // namespace keyport
