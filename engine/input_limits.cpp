#include "input_limits.hpp"

#include "flotilla/support/files.hpp"

#include <cerrno>
#include <system_error>
#include <vector>

namespace flotilla {
namespace {

// Positions in the text being scanned; strings and comments advance it without counting.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  [[nodiscard]] bool done() const { return i_ >= text_.size(); }
  [[nodiscard]] char peek(std::size_t ahead = 0) const { return i_ + ahead < text_.size() ? text_[i_ + ahead] : '\0'; }
  [[nodiscard]] TextPos pos() const {
    return TextPos{line_, static_cast<std::uint32_t>(i_ - line_start_ + 1)};
  }

  void advance() {
    if (text_[i_] == '\n') {
      ++line_;
      line_start_ = i_ + 1;
    }
    ++i_;
  }

  [[nodiscard]] bool starts(std::string_view s) const { return text_.substr(i_).starts_with(s); }

  // Past a string opened by the quote at the cursor: "..." and """...""" with escapes, '...'
  // and '''...''' without. A one-line string also ends at the newline (a parser reports it).
  void skip_string(bool escapes) {
    const char q = peek();
    const std::string triple(3, q);
    const bool multi = starts(triple);
    for (int k = 0; k < (multi ? 3 : 1); ++k) advance();
    while (!done()) {
      if (escapes && peek() == '\\') {
        advance();
        if (!done()) advance();
        continue;
      }
      if (multi && starts(triple)) {
        for (int k = 0; k < 3; ++k) advance();
        for (int k = 0; k < 2 && peek() == q; ++k) advance();  // """a"""" ends with a quote in it
        return;
      }
      if (!multi && peek() == '\n') return;
      const bool end = !multi && peek() == q;
      advance();
      if (end) return;
    }
  }

  void skip_comment() {
    while (!done() && peek() != '\n') advance();
  }

 private:
  std::string_view text_;
  std::size_t i_ = 0;
  std::uint32_t line_ = 1;
  std::size_t line_start_ = 0;
};

}  // namespace

std::string size_text(std::size_t bytes) {
  if (bytes >= (std::size_t{1} << 20) && bytes % (std::size_t{1} << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

Result<std::string> read_input_file(const std::filesystem::path& file, std::size_t max_bytes, std::string_view what) {
  const std::string name = file.string();
  const std::string kind(what);
  try {
    return support::read_regular_file(file, max_bytes);
  } catch (const std::system_error& e) {
    switch (e.code().value()) {
      case ENOENT: return fail(name + ": the " + kind + " does not exist; check the path");
      case EISDIR: return fail(name + " is a directory, not a " + kind + "; give the path of the file itself");
      case ENODEV:
        return fail(name + " is not a regular file (a FIFO, device or socket); the " + kind +
                    " must be a regular file, so write it to one first");
      case EFBIG:
        return fail(name + " is larger than " + size_text(max_bytes) + ", the limit for a " + kind +
                    "; check that it is the right file");
      default:
        return fail(name + ": cannot read the " + kind + ": " + e.code().message() + "; check the path and its permissions");
    }
  }
}

std::optional<TextPos> toml_too_deep(std::string_view text, int limit) {
  struct Level {
    bool table;  // an inline table (its keys may be dotted), else an array
    int parts;   // the dots of the key being read in it
  };
  std::vector<Level> open;  // never longer than `limit`: the scan stops there
  Scanner s(text);
  int header = 0;        // the depth of the current [table] or [[array of tables]]
  int depth = 1;         // the depth at the cursor: a key at the top level is one deep
  bool in_key = true;    // reading a key: at the top level, or in an inline table
  bool in_header = false;
  bool line_blank = true;
  const auto deeper = [&](int by) { return (depth += by) > limit; };
  while (!s.done()) {
    const char c = s.peek();
    if (c == '"' || c == '\'') {
      s.skip_string(c == '"');
      line_blank = false;
      continue;
    }
    if (c == '#') {
      s.skip_comment();
      continue;
    }
    const TextPos here = s.pos();
    if (c == '\n') {
      line_blank = true;
      if (open.empty()) {  // a key/value or header ends with its line; a value in brackets may go on
        in_header = false;
        in_key = true;
        depth = header + 1;
      }
    } else if (c == '[' && line_blank && open.empty()) {
      in_header = true;
      header = s.peek(1) == '[' ? 2 : 1;  // an array of tables is one level more
      depth = header;
      if (depth > limit) return here;
    } else if (in_header) {
      if (c == '.') {
        ++header;
        if (deeper(1)) return here;
      } else if (c == ']') {
        in_header = false;
        in_key = false;
      }
    } else if (in_key && c == '.') {
      if (!open.empty()) ++open.back().parts;
      if (deeper(1)) return here;
    } else if (in_key && c == '=') {
      in_key = false;
    } else if (!in_key && (c == '[' || c == '{')) {
      open.push_back({c == '{', 0});
      in_key = c == '{';
      if (deeper(1)) return here;
    } else if (c == ',' && !open.empty() && open.back().table) {
      depth -= open.back().parts;
      open.back().parts = 0;
      in_key = true;
    } else if ((c == ']' || c == '}') && !open.empty()) {
      depth -= 1 + open.back().parts;
      open.pop_back();
      in_key = false;
    }
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') line_blank = false;
    s.advance();
  }
  return std::nullopt;
}

std::optional<TextPos> json_too_deep(std::string_view text, int limit) {
  Scanner s(text);
  int depth = 0;
  while (!s.done()) {
    const char c = s.peek();
    if (c == '"') {
      s.skip_string(true);
      continue;
    }
    if (c == '[' || c == '{') {
      if (++depth > limit) return s.pos();
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
    s.advance();
  }
  return std::nullopt;
}

Result<nlohmann::json> read_saved_plan(const std::string& file) {
  const std::string again = "; make it again with `flotilla plan TOPOLOGY --out " + file + "`";
  auto text = read_input_file(file, kMaxPlanBytes, "plan file");
  if (!text) return std::unexpected(text.error());
  if (auto deep = json_too_deep(*text, kMaxNesting))
    return fail(file + ":" + std::to_string(deep->line) + ":" + std::to_string(deep->column) + ": the plan file nests more than " +
                std::to_string(kMaxNesting) + " levels deep, which no saved plan does" + again);
  nlohmann::json saved = nlohmann::json::parse(*text, nullptr, false);
  if (saved.is_discarded()) return fail("plan file " + file + " is not valid JSON" + again);
  if (!saved.is_object()) return fail("plan file " + file + " holds " + std::string(saved.type_name()) + ", not a saved plan (a JSON object)" + again);
  if (auto it = saved.find("state_serial"); it == saved.end() || !it->is_number_integer())
    return fail("plan file " + file + ": \"state_serial\" is missing or not an integer, so it is not a saved plan" + again);
  if (auto it = saved.find("actions"); it == saved.end() || !it->is_array())
    return fail("plan file " + file + ": \"actions\" is missing or not an array, so it is not a saved plan" + again);
  return saved;
}

}  // namespace flotilla
