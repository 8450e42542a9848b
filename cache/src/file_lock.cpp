#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <thread>
#include <utility>

#include "pickle/cache.hpp"

namespace pickle::cache {

namespace {

// filelock's poll interval (BaseFileLock.acquire(poll_interval=0.05)).
constexpr std::chrono::milliseconds poll_interval{50};

Value timeout_value(std::chrono::duration<double> timeout) { return Value(timeout.count()); }

}  // namespace

FileLock::FileLock(std::filesystem::path path, std::chrono::duration<double> timeout)
    : path_(std::move(path)), timeout_(timeout) {}

FileLock::~FileLock() { release(); }

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), timeout_(other.timeout_), fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    timeout_ = other.timeout_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

std::string FileLock::description() const {
  return "<pickle::cache::FileLock '" + path_.string() + "'>";
}

bool FileLock::try_acquire() {
  if (fd_ >= 0) return true;
  const int flags = O_RDWR | O_TRUNC | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::open(path_.c_str(), flags | O_CREAT, 0644);
  if (fd < 0 && (errno == EACCES || errno == EPERM)) {
    // As filelock: in a sticky directory another user's lock file cannot be O_CREAT-opened, but
    // it can be opened as it is.
    fd = ::open(path_.c_str(), flags);
  }
  if (fd < 0) {
    // A concurrent release of a newer filelock may unlink the file between lookup and create on
    // some file systems: that is contention, not failure.
    if (errno == ENOENT && std::filesystem::exists(path_.parent_path())) return false;
    throw CacheOSError(errno, "Cannot open the lock file", path_);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK || error == EAGAIN || error == EINTR) return false;
    throw CacheOSError(error, "Cannot lock the lock file", path_);
  }
  struct stat status {};
  if (::fstat(fd, &status) != 0 || status.st_nlink == 0) {
    // Locked a file someone unlinked after we opened it: others now lock a new file at the path.
    ::close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

void FileLock::acquire() {
  const auto start = std::chrono::steady_clock::now();
  while (!try_acquire()) {
    const auto waited = std::chrono::steady_clock::now() - start;
    if (timeout_.count() >= 0 && waited >= timeout_) {
      throw FileLockTimeoutError(description(), timeout_value(timeout_));
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

void FileLock::release() noexcept {
  if (fd_ < 0) return;
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

}  // namespace pickle::cache
