// The base directory torch's default_cache_dir() computes.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "pickle/cache.hpp"

namespace pickle::cache {

namespace {

// tempfile._get_default_tempdir accepts a directory only after creating, writing and removing a
// file in it; a directory that merely exists is not enough.
bool can_create_file_in(const std::filesystem::path& dir) {
  static thread_local std::mt19937_64 random(std::random_device{}());
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::filesystem::path probe =
        dir / ("tmp_pickle_cache_probe_" + std::to_string(random()));
    const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return false;
    }
    const bool written = ::write(fd, "blat", 4) == 4;
    ::close(fd);
    ::unlink(probe.c_str());
    return written;
  }
  return false;
}

}  // namespace

std::filesystem::path python_tempdir() {
  std::vector<std::filesystem::path> candidates;
  for (const char* variable : {"TMPDIR", "TEMP", "TMP"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') candidates.emplace_back(value);
  }
  for (const char* dir : {"/tmp", "/var/tmp", "/usr/tmp"}) candidates.emplace_back(dir);
  std::error_code error;
  const std::filesystem::path cwd = std::filesystem::current_path(error);
  if (!error) candidates.push_back(cwd);
  for (const auto& candidate : candidates) {
    // os.path.abspath: absolute and normalized lexically (no symlink resolution).
    std::filesystem::path dir = candidate.is_absolute() ? candidate : cwd / candidate;
    dir = dir.lexically_normal();
    if (!dir.has_filename() && dir != dir.root_path()) dir = dir.parent_path();  // "/tmp/"
    if (can_create_file_in(dir)) return dir;
  }
  throw CacheOSError(ENOENT, "No usable temporary directory found", cwd);
}

std::string python_user_name() {
  for (const char* variable : {"LOGNAME", "USER", "LNAME", "USERNAME"}) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return value;
  }
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  const int status = ::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found);
  if (status == 0 && found != nullptr) return found->pw_name;
  throw CacheOSError(status != 0 ? status : ENOENT, "No user name for uid " + std::to_string(::getuid()),
                     "/etc/passwd");
}

std::filesystem::path default_cache_dir() {
  std::string user = python_user_name();
  for (char& c : user) {
    switch (c) {
      case '\\': case '/': case ':': case '*': case '?': case '"': case '<': case '>': case '|':
        c = '_';
        break;
      default:
        break;
    }
  }
  return python_tempdir() / ("torchinductor_" + user);
}

std::optional<std::string> untrusted_directory_reason(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::path current = std::filesystem::absolute(dir, error).lexically_normal();
  if (error) return "cannot make the path absolute: " + error.message();
  if (!current.has_filename() && current != current.root_path()) current = current.parent_path();
  const uid_t me = ::geteuid();
  for (;;) {
    struct stat status {};
    if (::lstat(current.c_str(), &status) != 0) {
      if (errno != ENOENT) return current.string() + ": cannot inspect it";
    } else if (S_ISLNK(status.st_mode)) {
      return current.string() + " is a symbolic link";
    } else if (status.st_uid != me && status.st_uid != 0) {
      return current.string() + " is owned by uid " + std::to_string(status.st_uid);
    } else if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (status.st_mode & S_ISVTX) == 0) {
      return current.string() + " is writable by other users";
    }
    if (current == current.root_path() || !current.has_parent_path()) return std::nullopt;
    current = current.parent_path();
  }
}

}  // namespace pickle::cache
