// SPDX-License-Identifier: Apache-2.0
#include "migrate/stream_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/random.h"

namespace keyport::migrate {
namespace fs = std::filesystem;

namespace {

Error io_error(const std::string& what, const fs::path& path, int err) {
  ErrorCode code = ErrorCode::kIo;
  if (err == ENOENT) {
    code = ErrorCode::kNotFound;
  } else if (err == EEXIST) {
    code = ErrorCode::kAlreadyExists;
  } else if (err == EACCES || err == EPERM) {
    code = ErrorCode::kPermissionDenied;
  }
  return Error(code, what + " " + path.string() + ": " + std::strerror(err));
}

std::string temp_name(const fs::path& path) {
  return "." + path.filename().string() + ".tmp-" + hex_encode(random_bytes(6));
}

void fsync_dir(const fs::path& dir) {
  int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);  // best effort: some file systems refuse
    ::close(d);
  }
}

}  // namespace

Result<std::size_t> read_full(ByteSource& source, std::span<std::uint8_t> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    KEYPORT_ASSIGN_OR_RETURN(std::size_t n, source.read(buf.subspan(got)));
    if (n == 0) {
      break;
    }
    got += n;
  }
  return got;
}

Result<std::unique_ptr<FdSource>> FdSource::open(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return tl::unexpected(io_error("cannot open", path, errno));
  }
  auto source = std::make_unique<FdSource>(fd, true);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument, path.string() + " is a directory");
  }
  return source;
}

FdSource::~FdSource() {
  if (m_owned && m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<std::size_t> FdSource::read(std::span<std::uint8_t> buf) {
  for (;;) {
    ssize_t n = ::read(m_fd, buf.data(), buf.size());
    if (n >= 0) {
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) {
      return make_error(ErrorCode::kIo, std::string("read failed: ") + std::strerror(errno));
    }
  }
}

Status FdSink::write(std::span<const std::uint8_t> data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(m_fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return make_error(ErrorCode::kIo, std::string("write failed: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::size_t> SpanSource::read(std::span<std::uint8_t> buf) {
  std::size_t n = std::min(buf.size(), m_data.size() - m_pos);
  if (n == 0) {
    return n;  // an empty span may have no data pointer: memcpy(null, ...) is undefined
  }
  std::memcpy(buf.data(), m_data.data() + m_pos, n);
  m_pos += n;
  return n;
}

Result<std::unique_ptr<AtomicFileSink>> AtomicFileSink::create(const fs::path& path,
                                                               const WriteOptions& options) {
  if (path.filename().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "output path has no file name");
  }
  KEYPORT_TRY(check_output_path(path, options.overwrite));
  std::unique_ptr<AtomicFileSink> s(new AtomicFileSink());
  s->m_path = path;
  s->m_overwrite = options.overwrite;
  s->m_mode = options.mode & 07777;
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  s->m_fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, s->m_mode);
  if (s->m_fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    s->m_tmp = dir / temp_name(path);
    s->m_fd = ::open(s->m_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, s->m_mode);
    if (s->m_fd < 0) {
      int err = errno;
      s->m_tmp.clear();
      return tl::unexpected(io_error("cannot create a file in", dir, err));
    }
  } else if (s->m_fd < 0) {
    return tl::unexpected(io_error("cannot create a file in", dir, errno));
  }
  return s;
}

AtomicFileSink::~AtomicFileSink() {
  discard();
}

void AtomicFileSink::discard() {
  if (m_fd >= 0) {
    ::close(m_fd);
    m_fd = -1;
  }
  if (!m_tmp.empty()) {
    ::unlink(m_tmp.c_str());
    m_tmp.clear();
  }
}

Status AtomicFileSink::write(std::span<const std::uint8_t> data) {
  if (m_fd < 0) {
    return make_error(ErrorCode::kInternal, "write after commit");
  }
  FdSink sink(m_fd);
  auto st = sink.write(data);
  if (!st) {
    return tl::unexpected(st.error().with_context(m_path.string()));
  }
  return {};
}

Status AtomicFileSink::commit() {
  if (m_fd < 0) {
    return make_error(ErrorCode::kInternal, "commit twice");
  }
  if (::fchmod(m_fd, m_mode) != 0 || ::fsync(m_fd) != 0) {
    int err = errno;
    discard();
    return tl::unexpected(io_error("cannot sync", m_path, err));
  }
  auto exists = [&] {
    return make_error(ErrorCode::kAlreadyExists,
                      m_path.string() + " already exists (use --force to overwrite)");
  };
  fs::path named = m_tmp;
  if (named.empty()) {
    std::string proc = "/proc/self/fd/" + std::to_string(m_fd);
    fs::path target = m_overwrite ? m_path.parent_path() / temp_name(m_path) : m_path;
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      int err = errno;
      discard();
      return err == EEXIST ? exists() : tl::unexpected(io_error("cannot publish", m_path, err));
    }
    if (!m_overwrite) {
      discard();
      fsync_dir(m_path.parent_path());
      return {};
    }
    named = target;
    m_tmp = target;
  }
  Status result;
  if (m_overwrite) {
    if (::rename(named.c_str(), m_path.c_str()) != 0) {
      result = tl::unexpected(io_error("cannot rename onto", m_path, errno));
    } else {
      m_tmp.clear();
    }
  } else if (::link(named.c_str(), m_path.c_str()) != 0) {
    result = errno == EEXIST ? exists() : tl::unexpected(io_error("cannot publish", m_path, errno));
  }
  discard();
  fsync_dir(m_path.parent_path());
  return result;
}

}  // namespace keyport::migrate
