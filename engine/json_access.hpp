// Tolerant reads of recorded JSON (state written by older releases may lack keys).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace flotilla {

using json = nlohmann::json;

/// j[key] when it is a string, else `def`.
[[nodiscard]] inline std::string str_or(const json& j, const char* key, const std::string& def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

/// j[key] when it is an object, else an empty object.
[[nodiscard]] inline const json& obj(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object()) return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

/// j[key], made an object first when it is missing or not one.
inline json& ensure_object(json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_object()) j[key] = json::object();
  return j[key];
}

[[nodiscard]] inline bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace flotilla
