// Helpers shared by golden_test.cpp and differential_test.cpp: a small JSON reader for the
// manifest (and for the differential script's output), running a program with resource limits,
// and the order-insensitive "canonical" repr that gen_corpus.py records for values whose set
// iteration order depends on the string hash seed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "pickle/value.hpp"

extern "C" char** environ;

namespace golden {

// --- JSON ---------------------------------------------------------------------------------------

struct Json {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  double number = 0;
  std::string string;  // UTF-8; a lone surrogate escape becomes its 3-byte surrogatepass form
  std::vector<Json> array;
  std::map<std::string, Json> object;

  bool has(const std::string& key) const { return type == Type::object && object.count(key) > 0; }
  const Json& operator[](const std::string& key) const {
    static const Json null_value;
    auto it = object.find(key);
    return it == object.end() ? null_value : it->second;
  }
  bool is_null() const { return type == Type::null; }
  const std::string& str() const {
    if (type != Type::string) throw std::runtime_error("JSON value is not a string");
    return string;
  }
  std::string str_or(const std::string& fallback) const {
    return type == Type::string ? string : fallback;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  // Containers are parsed with an explicit stack so that nesting depth costs no C++ frames.
  Json parse() {
    struct Open {
      Json value;
      std::string key;  // objects: the key whose value is being parsed
    };
    std::vector<Open> open;
    for (;;) {
      skip_space();
      Json value;
      bool have_value = false;
      char c = peek();
      if (c == '{' || c == '[') {
        ++pos_;
        Open frame;
        frame.value.type = c == '{' ? Json::Type::object : Json::Type::array;
        skip_space();
        if (peek() == (c == '{' ? '}' : ']')) {
          ++pos_;
          value = std::move(frame.value);
          have_value = true;
        } else {
          if (c == '{') frame.key = parse_key();
          open.push_back(std::move(frame));
          continue;
        }
      } else {
        value = parse_scalar();
        have_value = true;
      }
      // Deliver the finished value to its container, closing containers as far as they end.
      while (have_value) {
        if (open.empty()) {
          skip_space();
          if (pos_ != text_.size()) fail("trailing characters");
          return value;
        }
        Open& top = open.back();
        if (top.value.type == Json::Type::object)
          top.value.object[top.key] = std::move(value);
        else
          top.value.array.push_back(std::move(value));
        skip_space();
        char next = take();
        if (next == ',') {
          if (top.value.type == Json::Type::object) top.key = parse_key();
          have_value = false;
        } else if (next == (top.value.type == Json::Type::object ? '}' : ']')) {
          value = std::move(top.value);
          open.pop_back();
        } else {
          fail("expected , or closing bracket");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(pos_));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  char take() {
    if (pos_ >= text_.size()) fail("unexpected end");
    return text_[pos_++];
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
      ++pos_;
  }
  std::string parse_key() {
    skip_space();
    if (take() != '"') fail("expected a key");
    std::string key = parse_string_body();
    skip_space();
    if (take() != ':') fail("expected :");
    return key;
  }
  Json parse_scalar() {
    Json value;
    char c = peek();
    if (c == '"') {
      ++pos_;
      value.type = Json::Type::string;
      value.string = parse_string_body();
    } else if (text_.substr(pos_, 4) == "null") {
      pos_ += 4;
    } else if (text_.substr(pos_, 4) == "true") {
      pos_ += 4;
      value.type = Json::Type::boolean;
      value.boolean = true;
    } else if (text_.substr(pos_, 5) == "false") {
      pos_ += 5;
      value.type = Json::Type::boolean;
    } else {
      std::size_t start = pos_;
      while (pos_ < text_.size() && std::string_view("+-0123456789.eE").find(text_[pos_]) !=
                                        std::string_view::npos)
        ++pos_;
      if (start == pos_) fail("unexpected character");
      value.type = Json::Type::number;
      value.number = std::strtod(std::string(text_.substr(start, pos_ - start)).c_str(), nullptr);
    }
    return value;
  }
  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = take();
      v <<= 4;
      if (h >= '0' && h <= '9') v |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }
  std::string parse_string_body() {
    std::string out;
    for (;;) {
      char c = take();
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = take();
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && text_.substr(pos_, 2) == "\\u") {
            std::size_t save = pos_;
            pos_ += 2;
            std::uint32_t low = hex4();
            if (low >= 0xDC00 && low < 0xE000)
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            else
              pos_ = save;
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

inline Json parse_json(std::string_view text) { return JsonParser(text).parse(); }

// --- files and bytes ----------------------------------------------------------------------------

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline std::string hex_decode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("bad hex digit");
  };
  if (hex.size() % 2) throw std::runtime_error("odd hex length");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = char(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

// Printable form of arbitrary bytes for failure messages, cut to `limit` characters.
inline std::string escape_for_message(std::string_view text, std::size_t limit = 300) {
  std::string out;
  static const char* digits = "0123456789abcdef";
  for (unsigned char c : text) {
    if (out.size() >= limit) {
      out += "…";
      break;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c >= 0x20 && c < 0x7f) out += char(c);
    else if (c >= 0x80) out += char(c);  // keep UTF-8 readable
    else out += std::string("\\x") + digits[c >> 4] + digits[c & 15];
  }
  return out;
}

// --- running a program ----------------------------------------------------------------------------

struct ProcessResult {
  bool started = false;
  int exit_code = -1;   // when it exited normally
  int signal = 0;       // when a signal ended it
  bool killed_for_time = false;
  double cpu_seconds = 0;
  double wall_seconds = 0;
  long max_rss_kib = 0;
  std::string out, err;
};

struct ProcessLimits {
  std::size_t address_space_bytes = 0;  // RLIMIT_AS in the child; 0 = unlimited
  double wall_timeout_seconds = 60;     // the child is killed (SIGKILL) after this
};

// Runs argv[0] (a path) with stdin from `input`; collects stdout and stderr.
inline ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input,
                                 const ProcessLimits& limits = {},
                                 const std::vector<std::pair<std::string, std::string>>& env = {}) {
  ProcessResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) return result;
  // posix_spawn (not fork): the test process holds the whole manifest, and copying its page
  // tables for every one of thousands of runs costs more than the runs. The address-space limit is
  // applied by a shell's ulimit just before it execs the program.
  std::vector<std::string> full_argv;
  if (limits.address_space_bytes) {
    full_argv = {"/bin/sh", "-c", "ulimit -v " + std::to_string(limits.address_space_bytes / 1024) +
                                      " && exec \"$0\" \"$@\""};
  }
  full_argv.insert(full_argv.end(), argv.begin(), argv.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    bool overridden = false;
    for (const auto& [key, value] : env) overridden |= entry.rfind(key + "=", 0) == 0;
    if (!overridden) env_strings.push_back(std::move(entry));
  }
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> args, envp;
  for (auto& a : full_argv) args.push_back(a.data());
  args.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
    posix_spawn_file_actions_addclose(&actions, fd);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  int spawn_error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      close(fd);
    return result;
  }
  result.started = true;
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  char buffer[65536];
  while (out_open || err_open) {
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > limits.wall_timeout_seconds && !result.killed_for_time) {
      kill(pid, SIGKILL);
      result.killed_for_time = true;
    }
    pollfd fds[3];
    int n = 0;
    if (out_open) fds[n++] = {out_pipe[0], POLLIN, 0};
    if (err_open) fds[n++] = {err_pipe[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (poll(fds, nfds_t(n), 100) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += std::size_t(w);
        if (w < 0 && errno != EAGAIN) written = input.size();
        if (written >= input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t r = read(fds[i].fd, buffer, sizeof buffer);
      if (r > 0) {
        (fds[i].fd == out_pipe[0] ? result.out : result.err).append(buffer, std::size_t(r));
      } else if (r == 0 || errno != EINTR) {
        if (fds[i].fd == out_pipe[0]) out_open = false;
        else err_open = false;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.cpu_seconds = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  result.max_rss_kib = usage.ru_maxrss;
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

// --- canonical repr ---------------------------------------------------------------------------

// repr(value), except that the elements of every set and frozenset are sorted by their own
// canonical text (byte order of UTF-8 = code point order, as Python's sorted() of str), exactly as
// gen_corpus.py's canonical_repr. Iterative, like everything that walks user data.
inline std::string canonical_repr(const pickle::Value& root) {
  using pickle::Kind;
  struct Frame {
    pickle::Value value;
    Kind kind;
    std::vector<pickle::Value> children;  // dicts: key, value, key, value, …
    std::size_t next = 0;
    std::vector<std::string> parts;
  };
  std::vector<Frame> stack;
  std::unordered_set<const void*> active;
  std::string result;
  auto deliver = [&](std::string text) {
    if (stack.empty()) result = std::move(text);
    else stack.back().parts.push_back(std::move(text));
  };
  auto visit = [&](const pickle::Value& v) {
    Kind kind = v.kind();
    bool container = kind == Kind::list || kind == Kind::tuple || kind == Kind::dict ||
                     kind == Kind::set || kind == Kind::frozenset;
    if (!container) {
      deliver(pickle::repr(v));
      return;
    }
    if (active.count(v.identity())) {
      deliver(kind == Kind::list    ? "[...]"
              : kind == Kind::tuple ? "(...)"
              : kind == Kind::dict  ? "{...}"
              : kind == Kind::set   ? "set(...)"
                                    : "frozenset(...)");
      return;
    }
    active.insert(v.identity());
    Frame frame{v, kind, {}, 0, {}};
    if (kind == Kind::dict) {
      for (auto& [k, item] : v.dict_items()) {
        frame.children.push_back(k);
        frame.children.push_back(item);
      }
    } else {
      frame.children = v.items();
    }
    stack.push_back(std::move(frame));
  };
  visit(root);
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.next < top.children.size()) {
      pickle::Value child = top.children[top.next++];
      visit(child);
      continue;
    }
    std::string text;
    auto join = [](const std::vector<std::string>& parts) {
      std::string out;
      for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out += ", ";
        out += parts[i];
      }
      return out;
    };
    switch (top.kind) {
      case Kind::list: text = "[" + join(top.parts) + "]"; break;
      case Kind::tuple:
        text = "(" + join(top.parts) + (top.parts.size() == 1 ? ",)" : ")");
        break;
      case Kind::dict: {
        std::vector<std::string> pairs;
        for (std::size_t i = 0; i + 1 < top.parts.size(); i += 2)
          pairs.push_back(top.parts[i] + ": " + top.parts[i + 1]);
        text = "{" + join(pairs) + "}";
        break;
      }
      default: {
        std::sort(top.parts.begin(), top.parts.end());
        const char* name = top.kind == Kind::set ? "set" : "frozenset";
        if (top.parts.empty()) text = std::string(name) + "()";
        else if (top.kind == Kind::set) text = "{" + join(top.parts) + "}";
        else text = "frozenset({" + join(top.parts) + "})";
      }
    }
    active.erase(top.value.identity());
    stack.pop_back();
    deliver(std::move(text));
  }
  return result;
}

}  // namespace golden
