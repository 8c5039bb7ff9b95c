// SPDX-License-Identifier: Apache-2.0
#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

namespace {

std::string temp_name(const fs::path& path) {
  return "." + path.filename().string() + ".tmp-" + hex_encode(random_bytes(6));
}

Status write_all(int fd, std::span<const std::uint8_t> data, const fs::path& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return tl::unexpected(io_error("cannot write", path, errno));
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

// A file whose bytes are written but which has no name yet: an O_TMPFILE descriptor, or (where the
// file system has no O_TMPFILE) a named temporary file beside the destination.
struct Pending {
  int fd = -1;
  fs::path tmp;
};

void discard(Pending& p) {
  if (p.fd >= 0)
    ::close(p.fd);
  if (!p.tmp.empty())
    ::unlink(p.tmp.c_str());
  p.fd = -1;
  p.tmp.clear();
}

Result<Pending> write_pending(const fs::path& path, std::span<const std::uint8_t> data,
                              unsigned mode, bool sync) {
  if (path.filename().empty())
    return make_error(ErrorCode::kInvalidArgument, "output path has no file name");
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  Pending p;
  p.fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 07777);
  if (p.fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    p.tmp = dir / temp_name(path);
    p.fd = ::open(p.tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (p.fd < 0) {
      int err = errno;
      p.tmp.clear();
      return tl::unexpected(io_error("cannot create a file in", dir, err));
    }
  } else if (p.fd < 0) {
    return tl::unexpected(io_error("cannot create a file in", dir, errno));
  }
  auto fail = [&](const std::string& what, int err) -> Result<Pending> {
    discard(p);
    return tl::unexpected(io_error(what, path, err));
  };
  auto written = write_all(p.fd, data, path);
  if (!written) {
    discard(p);
    return tl::unexpected(written.error());
  }
  if (::fchmod(p.fd, mode & 07777) != 0)
    return fail("cannot chmod", errno);
  if (sync && ::fsync(p.fd) != 0)
    return fail("cannot fsync", errno);
  return p;
}

// Gives a pending file its name (atomically; never over an existing file unless overwrite), and
// releases it in every case.
Status publish(Pending& p, const fs::path& path, bool overwrite) {
  auto exists_error = [&] {
    return make_error(ErrorCode::kAlreadyExists,
                      path.string() + " already exists (use --force to overwrite)");
  };
  fs::path named = p.tmp;
  if (p.fd >= 0 && named.empty()) {
    // Link the unnamed file: straight to its name, or to a temporary name that is then renamed.
    std::string proc = "/proc/self/fd/" + std::to_string(p.fd);
    fs::path target = overwrite ? path.parent_path() / temp_name(path) : path;
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      int err = errno;
      discard(p);
      if (err == EEXIST)
        return exists_error();
      return tl::unexpected(io_error("cannot publish", path, err));
    }
    if (!overwrite) {
      discard(p);
      return {};
    }
    named = target;
    p.tmp = target;
  }
  Status result;
  if (overwrite) {
    if (::rename(named.c_str(), path.c_str()) != 0)
      result = tl::unexpected(io_error("cannot rename onto", path, errno));
  } else if (::link(named.c_str(), path.c_str()) != 0) {
    result =
        errno == EEXIST ? exists_error() : tl::unexpected(io_error("cannot publish", path, errno));
  }
  discard(p);  // unlinks the temporary name (gone already after a successful rename)
  return result;
}

}  // namespace

AtomicBatchWriter::~AtomicBatchWriter() {
  abort();
}

void AtomicBatchWriter::abort() {
  for (auto& s : m_staged) {
    Pending p{s.fd, s.tmp};
    discard(p);
  }
  m_staged.clear();
}

Status AtomicBatchWriter::stage(const fs::path& path, std::span<const std::uint8_t> data,
                                const WriteOptions& options) {
  KEYPORT_TRY(check_output_path(path, options.overwrite));
  KEYPORT_ASSIGN_OR_RETURN(Pending p, write_pending(path, data, options.mode, /*sync=*/false));
  m_staged.push_back({p.fd, p.tmp, path, options.overwrite});
  return {};
}

std::vector<Status> AtomicBatchWriter::commit() {
  std::vector<Status> out;
  if (m_staged.empty())
    return out;
  // One sync makes every staged file's data durable before any of them gets its name.
  if (m_staged.front().fd >= 0)
    ::syncfs(m_staged.front().fd);
  std::vector<fs::path> dirs;
  for (auto& s : m_staged) {
    Pending p{s.fd, s.tmp};
    out.push_back(publish(p, s.path, s.overwrite));
    fs::path d = s.path.parent_path();
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end())
      dirs.push_back(d);
  }
  for (const auto& d : dirs)
    (void)fsync_dir(d);
  m_staged.clear();
  return out;
}

Status write_file_atomic(const fs::path& path, std::span<const std::uint8_t> data,
                         const WriteOptions& options) {
  KEYPORT_TRY(check_output_path(path, options.overwrite));
  KEYPORT_ASSIGN_OR_RETURN(Pending p, write_pending(path, data, options.mode, /*sync=*/true));
  KEYPORT_TRY(publish(p, path, options.overwrite));
  return fsync_dir(path.parent_path());
}

}  // namespace keyport
