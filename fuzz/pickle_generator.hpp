// A structure-aware pickle generator: turns arbitrary bytes (a fuzzer's input, a RapidCheck
// vector) into an opcode stream CPython would load without error.
//
// It simulates the unpickler's stack, marks and memo and only emits an opcode that is valid in the
// current state, so the deep paths of a reader are reached on every input: shared references
// through the memo (GET of an earlier PUT), self-containing lists and dicts (GET of a list, then
// APPEND into it), sets and dict keys that are hashable, inert objects built by REDUCE / NEWOBJ /
// NEWOBJ_EX / INST / OBJ with BUILD state, persistent ids, frames, and every protocol's opcodes.
// The input bytes are consumed as choices; when they run out the pickle is closed and STOPped.
//
// Globals are never builtin constructors a reader folds (builtins.set, _codecs.encode, …): a call of
// those with arbitrary arguments is an error in CPython too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pickle_fuzz {

class Choices {
 public:
  Choices(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool exhausted() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // A number in [0, n).
  std::uint32_t below(std::uint32_t n) {
    if (n <= 1) return 0;
    std::uint32_t value = byte();
    if (n > 256) value = value << 8 | byte();
    return value % n;
  }
  bool coin() { return byte() & 1; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

class PickleGenerator {
 public:
  static constexpr std::size_t max_ops = 3000;

  explicit PickleGenerator(Choices choices) : in_(choices) {}

  std::string generate() {
    protocol_ = static_cast<int>(in_.below(6));
    const bool framed = protocol_ >= 4 && in_.coin();
    // A root MARK, closed into a tuple at the end, so that nothing is left on the stack at STOP
    // (pickletools.dis rejects that). It is below every other mark and never popped before.
    op('(');
    for (std::size_t ops = 0; ops < max_ops && !in_.exhausted(); ++ops) step();
    close();
    std::string header;
    if (protocol_ >= 2) {
      header += '\x80';
      header += static_cast<char>(protocol_);
    }
    if (framed) {
      header += '\x95';
      header += le(out_.size(), 8);
    }
    return header + out_;
  }

 private:
  enum class T : std::uint8_t {
    atom,        // None, bool, int, float, str, bytes: hashable, not a container
    bytearray,
    list,
    dict,
    set,
    tuple,       // hashability tracked in Entry
    frozenset,
    global,      // a class or function reference
    object,      // an inert object (call result, persistent id)
  };
  struct Entry {
    T type;
    bool hashable;
  };

  static std::string le(std::uint64_t value, int width) {
    std::string out;
    for (int i = 0; i < width; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
    return out;
  }

  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  std::size_t above_fence() const { return stack_.size() - fence(); }
  void op(char opcode) { out_ += opcode; }
  void push(T type, bool hashable) { stack_.push_back(Entry{type, hashable}); }
  bool all_hashable(std::size_t from) const {
    for (std::size_t i = from; i < stack_.size(); ++i) {
      if (!stack_[i].hashable) return false;
    }
    return true;
  }

  std::string text() {
    static constexpr std::string_view words[] = {"", "a", "key", "h\xc3\xa9llo", "\xe2\x82\xac", "x y\nz",
                                                 "\xf0\x9f\x90\x8d", "0", "name", "\\", "'"};
    std::string s(words[in_.below(std::size(words))]);
    if (in_.coin()) s += std::to_string(in_.byte());
    return s;
  }
  std::string raw_bytes() {
    std::string s;
    const std::size_t n = in_.below(in_.coin() ? 300 : 8);
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(in_.byte());
    return s;
  }

  void atom() {
    switch (in_.below(protocol_ >= 1 ? 16 : 6)) {
      case 0: op('N'); break;
      case 1: out_ += "I" + std::to_string(static_cast<std::int8_t>(in_.byte())) + "\n"; break;
      case 2: out_ += in_.coin() ? "I01\n" : "I00\n"; break;
      case 3: out_ += "L" + std::to_string(static_cast<std::uint64_t>(in_.byte()) << (in_.byte() % 56)) + "L\n"; break;
      case 4: out_ += "F" + std::to_string(in_.byte()) + "." + std::to_string(in_.byte()) + "\n"; break;
      case 5: {
        // UNICODE: raw-unicode-escape; keep to ASCII letters and \u escapes.
        out_ += "V";
        for (std::size_t i = 0, n = in_.below(6); i < n; ++i) {
          if (in_.coin()) {
            static const char hex[] = "0123456789abcdef";
            out_ += "\\u00";
            out_ += hex[4 + in_.below(4)];
            out_ += hex[in_.below(16)];
          } else {
            out_ += static_cast<char>('a' + in_.below(26));
          }
        }
        out_ += "\n";
        break;
      }
      case 6: op('K'); out_ += static_cast<char>(in_.byte()); break;
      case 7: op('M'); out_ += le(in_.byte() | in_.byte() << 8, 2); break;
      case 8: op('J'); out_ += le(static_cast<std::uint32_t>(in_.byte()) << 24 | in_.byte(), 4); break;
      case 9: op('G'); for (int i = 0; i < 8; ++i) out_ += static_cast<char>(in_.byte()); break;
      case 10: {
        std::string s = text();
        op('X');
        out_ += le(s.size(), 4) + s;
        break;
      }
      case 11:
        if (protocol_ >= 2) {
          const std::size_t n = in_.below(10);
          op('\x8a');
          out_ += static_cast<char>(n);
          for (std::size_t i = 0; i < n; ++i) out_ += static_cast<char>(in_.byte());
        } else {
          op(in_.coin() ? 'N' : ')');
        }
        break;
      case 12:
        if (protocol_ >= 2) {
          op(in_.coin() ? '\x88' : '\x89');
        } else {
          op('N');
        }
        break;
      case 13:
        if (protocol_ >= 3) {
          std::string s = raw_bytes();
          if (s.size() < 256 && in_.coin()) {
            op('C');
            out_ += static_cast<char>(s.size());
          } else {
            op('B');
            out_ += le(s.size(), 4);
          }
          out_ += s;
        } else {
          std::string s = raw_bytes();
          op('T');  // BINSTRING: loads as str with latin-1? only ASCII is safe by default
          for (char& c : s) c = static_cast<char>(c & 0x7f);
          out_ += le(s.size(), 4) + s;
        }
        break;
      case 14:
        if (protocol_ >= 4) {
          std::string s = text();
          if (in_.coin()) {
            op('\x8c');
            out_ += static_cast<char>(s.size());
          } else {
            op('\x8d');
            out_ += le(s.size(), 8);
          }
          out_ += s;
        } else {
          out_ += "S'" + std::string(in_.coin() ? "\\x41b" : "ab") + "'\n";
        }
        break;
      default:
        if (protocol_ >= 5) {
          std::string s = raw_bytes();
          op('\x96');
          out_ += le(s.size(), 8) + s;
          push(T::bytearray, false);
          return;
        }
        op('N');
        break;
    }
    push(T::atom, true);
  }

  void global() {
    static constexpr std::pair<std::string_view, std::string_view> names[] = {
        {"__main__", "Point"},        {"collections", "OrderedDict"}, {"datetime", "date"},
        {"copyreg", "_reconstructor"}, {"mod.sub", "Cls"},     {"decimal", "Decimal"}};
    auto [module, name] = names[in_.below(std::size(names))];
    if (protocol_ >= 4 && in_.coin()) {
      std::string m(module), n(name);
      op('\x8c');
      out_ += static_cast<char>(m.size()) + m;
      op('\x8c');
      out_ += static_cast<char>(n.size()) + n;
      op('\x93');
    } else {
      out_ += "c" + std::string(module) + "\n" + std::string(name) + "\n";
    }
    push(T::global, true);
  }

  void memo_put() {
    const std::size_t index = memo_.size();
    if (protocol_ >= 4 && in_.coin()) {
      op('\x94');
    } else if (protocol_ >= 1 && index < 256 && in_.coin()) {
      op('q');
      out_ += static_cast<char>(index);
    } else if (protocol_ >= 1 && in_.coin()) {
      op('r');
      out_ += le(index, 4);
    } else {
      out_ += "p" + std::to_string(index) + "\n";
    }
    memo_.push_back(stack_.back());
  }

  void memo_get() {
    const std::size_t index = in_.below(static_cast<std::uint32_t>(memo_.size()));
    if (protocol_ >= 1 && index < 256 && in_.coin()) {
      op('h');
      out_ += static_cast<char>(index);
    } else if (protocol_ >= 1 && in_.coin()) {
      op('j');
      out_ += le(index, 4);
    } else {
      out_ += "g" + std::to_string(index) + "\n";
    }
    stack_.push_back(memo_[index]);
  }

  // Pops the items above the topmost mark (and the mark).
  std::size_t pop_mark() {
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    return mark;
  }

  void close_mark() {
    const std::size_t mark = marks_.back();
    const std::size_t count = stack_.size() - mark;
    const bool hashable = all_hashable(mark);
    const bool below_is = mark > fence_below();
    const T below = below_is ? stack_[mark - 1].type : T::atom;
    const std::uint32_t choice = in_.below(8);
    if (choice == 0 && below_is && below == T::list && protocol_ >= 1) {
      op('e');  // APPENDS
      pop_mark();
      stack_.resize(mark);
    } else if (choice == 1 && below_is && below == T::dict && protocol_ >= 1 && count % 2 == 0 &&
               keys_hashable(mark)) {
      op('u');  // SETITEMS
      pop_mark();
      stack_.resize(mark);
    } else if (choice == 2 && below_is && below == T::set && protocol_ >= 4 && hashable) {
      op('\x90');  // ADDITEMS
      pop_mark();
      stack_.resize(mark);
    } else if (choice == 3 && count % 2 == 0 && keys_hashable(mark)) {
      op('d');
      pop_mark();
      stack_.resize(mark);
      push(T::dict, false);
    } else if (choice == 4 && protocol_ >= 4 && hashable) {
      op('\x91');
      pop_mark();
      stack_.resize(mark);
      push(T::frozenset, true);
    } else if (choice == 5) {
      op('l');
      pop_mark();
      stack_.resize(mark);
      push(T::list, false);
    } else if (choice == 6 && count >= 1 && stack_[mark].type == T::global && protocol_ >= 1) {
      op('o');  // OBJ: cls args...
      pop_mark();
      stack_.resize(mark);
      push(T::object, true);
    } else if (choice == 7 && protocol_ == 0) {
      out_ += "i__main__\nPoint\n";  // INST
      pop_mark();
      stack_.resize(mark);
      push(T::object, true);
    } else {
      op('t');
      pop_mark();
      stack_.resize(mark);
      push(T::tuple, hashable);
    }
  }

  // The fence that applies once the topmost mark is popped.
  std::size_t fence_below() const { return marks_.size() >= 2 ? marks_[marks_.size() - 2] : 0; }
  bool keys_hashable(std::size_t from) const {
    for (std::size_t i = from; i < stack_.size(); i += 2) {
      if (!stack_[i].hashable) return false;
    }
    return true;
  }

  void step() {
    const std::size_t n = above_fence();
    switch (in_.below(20)) {
      case 0: case 1: case 2: atom(); break;
      case 3:
        if (protocol_ >= 1) {
          static constexpr char empties[] = {']', '}', ')', '\x8f'};
          const std::size_t k = in_.below(protocol_ >= 4 ? 4 : 3);
          op(empties[k]);
          push(k == 0 ? T::list : k == 1 ? T::dict : k == 2 ? T::tuple : T::set, k == 2);
        } else {
          out_ += in_.coin() ? "(l" : "(d";
          push(out_.back() == 'l' ? T::list : T::dict, false);
        }
        break;
      case 4:
        if (marks_.size() < 64) {
          op('(');
          marks_.push_back(stack_.size());
        }
        break;
      case 5:
        if (!marks_.empty()) close_mark();
        break;
      case 6:  // APPEND
        if (n >= 2 && stack_[stack_.size() - 2].type == T::list) {
          op('a');
          stack_.pop_back();
        }
        break;
      case 7:  // SETITEM
        if (n >= 3 && stack_[stack_.size() - 3].type == T::dict && stack_[stack_.size() - 2].hashable) {
          op('s');
          stack_.resize(stack_.size() - 2);
        }
        break;
      case 8:  // TUPLE1..3
        if (protocol_ >= 2 && n >= 1) {
          const std::size_t k = 1 + in_.below(static_cast<std::uint32_t>(std::min<std::size_t>(n, 3)));
          op(static_cast<char>('\x85' + (k - 1)));
          const bool hashable = all_hashable(stack_.size() - k);
          stack_.resize(stack_.size() - k);
          push(T::tuple, hashable);
        }
        break;
      case 9: case 10:
        if (n >= 1) memo_put();
        break;
      case 11: case 12:
        if (!memo_.empty()) memo_get();
        break;
      case 13:
        if (n >= 1) {
          if (in_.coin()) {
            op('2');  // DUP
            stack_.push_back(stack_.back());
          } else {
            op('0');  // POP
            stack_.pop_back();
          }
        }
        break;
      case 14: global(); break;
      case 15:  // REDUCE / NEWOBJ / NEWOBJ_EX on a global and an argument tuple
        if (n >= 2 && stack_[stack_.size() - 2].type == T::global && stack_.back().type == T::tuple) {
          if (protocol_ >= 2 && in_.coin()) {
            op('\x81');
          } else {
            op('R');
          }
          stack_.resize(stack_.size() - 2);
          push(T::object, true);
        } else if (n >= 2 && protocol_ >= 4 && stack_[stack_.size() - 2].type == T::global &&
                   stack_.back().type == T::tuple) {
          op('}');  // keyword arguments: CPython wants str keys, so an empty dict
          op('\x92');
          stack_.resize(stack_.size() - 2);
          push(T::object, true);
        }
        break;
      case 16:  // BUILD
        if (n >= 2 && stack_[stack_.size() - 2].type == T::object) {
          op('b');
          stack_.pop_back();
        }
        break;
      case 17:  // persistent ids
        if (protocol_ >= 1 && in_.coin()) {
          // A str pid: protocol 0 can only write persistent ids as text (str(pid)), so any other pid
          // would not survive a round trip through it, in CPython either.
          out_ += "Vpid" + std::to_string(in_.byte()) + "\n";
          op('Q');
        } else {
          out_ += "Ppid" + std::to_string(in_.byte()) + "\n";
        }
        // Not a BUILD target: a persistent-id object given itself as state cannot be written back
        // (pickle::dumps refuses it, fuzz/regressions/writer-persid-build-self.pkl); other objects
        // still are.
        push(T::atom, true);
        break;
      case 18:  // a self-reference: the top list or dict goes into itself
        if (n >= 1 && stack_.back().type == T::list && protocol_ >= 1) {
          op('2');  // DUP
          op('a');  // APPEND: L.append(L)
        } else if (n >= 1 && stack_.back().type == T::dict) {
          memo_put();
          const std::size_t index = memo_.size() - 1;
          out_ += "Vself\n";
          out_ += "g" + std::to_string(index) + "\n";
          op('s');  // d['self'] = d
        }
        break;
      default:
        if (n >= 1 && protocol_ >= 1 && in_.coin()) {
          op('1');  // POP_MARK needs a mark
          if (!marks_.empty()) {
            stack_.resize(pop_mark());
          } else {
            out_.pop_back();
          }
        } else {
          atom();
        }
        break;
    }
  }

  void close() {
    while (!marks_.empty()) {
      op('t');
      const std::size_t mark = pop_mark();
      const bool hashable = all_hashable(mark);
      stack_.resize(mark);
      push(T::tuple, hashable);
    }
    op('t');  // the root mark
    op('.');
  }

  Choices in_;
  int protocol_ = 0;
  std::string out_;
  std::vector<Entry> stack_;
  std::vector<std::size_t> marks_;
  std::vector<Entry> memo_;
};

inline std::string generate_pickle(const std::uint8_t* data, std::size_t size) {
  return PickleGenerator(Choices(data, size)).generate();
}

}  // namespace pickle_fuzz
