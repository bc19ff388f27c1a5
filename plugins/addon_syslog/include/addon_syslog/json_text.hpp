// The store's own JSON text handling. Lenient where nlohmann's parser is strict on purpose:
// rsyslog's JSON escaping passes bytes >= 0x80 through unchanged, valid UTF-8 or not, and those
// bytes must survive the trip into the store.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla::syslog_addon {

/// Decodes the JSON string starting at s[i] (the opening quote) into raw bytes and moves `i`
/// past its closing quote. Returns false on a malformed string.
bool decode_json_string(std::string_view s, std::size_t& i, std::string& out);

/// Called for each field of a flat object: the key and its value as raw bytes (numbers as
/// their text). The value may be moved from.
using FieldVisitor = std::function<void(const std::string& key, std::string& value)>;

/// Walks a flat JSON object of strings and numbers, calling `field` for each member. Returns
/// false when the text is not such an object.
bool visit_flat_object(std::string_view s, const FieldVisitor& field);

/// A flat JSON object as a map of raw values; nullopt when the text is not such an object.
std::optional<std::map<std::string, std::string>> parse_flat_object(std::string_view s);

/// Appends `text` as the inside of a JSON string. Bytes that are not valid UTF-8 become
/// U+FFFD (and `invalid` is set); control characters are escaped.
void append_json_string(std::string& out, std::string_view text, bool& invalid);

/// The value of one hexadecimal digit, or -1.
int hex_value(char c);

}  // namespace flotilla::syslog_addon
