#include "addon_syslog/json_text.hpp"

#include "flotilla/support/encoding.hpp"

#include <algorithm>
#include <cstdint>

namespace flotilla::syslog_addon {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace {

void put_utf8(std::string& out, std::uint32_t cp) {
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

bool read_hex4(std::string_view s, std::size_t& i, std::uint32_t& out) {
  if (i + 4 > s.size()) return false;
  out = 0;
  for (int k = 0; k < 4; ++k) {
    const int v = hex_value(s[i + k]);
    if (v < 0) return false;
    out = out * 16 + static_cast<std::uint32_t>(v);
  }
  i += 4;
  return true;
}

void skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
}

}  // namespace

bool decode_json_string(std::string_view s, std::size_t& i, std::string& out) {
  if (i >= s.size() || s[i] != '"') return false;
  ++i;
  out.clear();
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      ++i;
      return true;
    }
    if (c != '\\') {
      // Copy the run up to the next quote or backslash in one go (1 MB lines are normal).
      std::size_t j = i;
      while (j < s.size() && s[j] != '"' && s[j] != '\\') ++j;
      out.append(s.substr(i, j - i));
      i = j;
      continue;
    }
    if (++i >= s.size()) return false;
    const char e = s[i++];
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
        std::uint32_t cp = 0;
        if (!read_hex4(s, i, cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
          std::size_t k = i + 2;
          std::uint32_t low = 0;
          if (read_hex4(s, k, low) && low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i = k;
          }
        }
        put_utf8(out, cp);
        break;
      }
      default: return false;
    }
  }
  return false;
}

bool visit_flat_object(std::string_view s, const FieldVisitor& field) {
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  skip_ws(s, i);
  if (i < s.size() && s[i] == '}') return true;
  std::string key, value;
  for (;;) {
    skip_ws(s, i);
    if (!decode_json_string(s, i, key)) return false;
    skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    skip_ws(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '"') {
      if (!decode_json_string(s, i, value)) return false;
    } else {
      const std::size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ' ') ++i;
      value.assign(s.substr(start, i - start));
      if (value.empty()) return false;
    }
    field(key, value);
    skip_ws(s, i);
    if (i >= s.size()) return false;
    if (s[i] == ',') {
      ++i;
      continue;
    }
    return s[i] == '}';
  }
}

std::optional<std::map<std::string, std::string>> parse_flat_object(std::string_view s) {
  std::map<std::string, std::string> fields;
  if (!visit_flat_object(s, [&](const std::string& k, std::string& v) { fields[k] = std::move(v); })) return std::nullopt;
  return fields;
}

/// Appends `text` as the inside of a JSON string. Bytes that are not valid UTF-8 become
/// U+FFFD (and `invalid` is set); control characters are escaped.
void append_json_string(std::string& out, std::string_view text, bool& invalid) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      std::size_t j = i + 1;
      while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\') ++j;
      out.append(text.substr(i, j - i));
      i = j;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x20) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
      }
      ++i;
      continue;
    }
    // c >= 0x80: copy a well-formed sequence, replace anything else byte by byte.
    std::uint32_t code_point = 0;
    if (const std::size_t len = support::utf8_sequence(text, i, code_point); len != 0) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      invalid = true;
      ++i;
    }
  }
}

}  // namespace flotilla::syslog_addon
