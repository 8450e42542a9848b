// Test helper for repr_test and dis_test: reads the JSON lines written by gen_repr_dis_cases.py.
// Every line is a flat object whose values are all strings, so a small parser suffices.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace repr_dis_test {

using Row = std::map<std::string, std::string>;

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline std::string parse_json_string(const std::string& line, std::size_t& i) {
  if (line.at(i) != '"') throw std::runtime_error("expected a JSON string");
  ++i;
  std::string out;
  auto hex4 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(std::stoul(line.substr(at, 4), nullptr, 16));
  };
  while (line.at(i) != '"') {
    const char c = line[i++];
    if (c != '\\') {
      out += c;
      continue;
    }
    const char e = line.at(i++);
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'u': {
        std::uint32_t cp = hex4(i);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && line.compare(i, 2, "\\u") == 0) {
          const std::uint32_t low = hex4(i + 2);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, cp);
        break;
      }
      default: out += e; break;  // \" \\ \/
    }
  }
  ++i;
  return out;
}

inline Row parse_row(const std::string& line) {
  Row row;
  std::size_t i = line.find('{') + 1;
  while (true) {
    while (line.at(i) == ' ' || line[i] == ',') ++i;
    if (line[i] == '}') break;
    std::string key = parse_json_string(line, i);
    while (line.at(i) == ' ' || line[i] == ':') ++i;
    row[key] = parse_json_string(line, i);
  }
  return row;
}

inline std::vector<Row> read_rows(const std::string& file_name) {
  const char* dir = std::getenv("PICKLE_TEST_DATA");
  const std::string path = std::string(dir ? dir : "tests") + "/data/" + file_name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(parse_row(line));
  }
  return rows;
}

inline std::string from_hex(const std::string& hex) {
  if (hex == "-") return {};
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

}  // namespace repr_dis_test
