#include "support/engine_replay.hpp"

#include <stdlib.h>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace flotilla::test {

using nlohmann::json;

namespace {

std::string percent_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

/// Path and decoded query parameters, so that order and encoding do not matter.
std::pair<std::string, std::multimap<std::string, std::string>> split(const std::string& target) {
  const auto q = target.find('?');
  std::multimap<std::string, std::string> params;
  if (q != std::string::npos) {
    std::istringstream in(target.substr(q + 1));
    std::string item;
    while (std::getline(in, item, '&')) {
      const auto eq = item.find('=');
      params.emplace(percent_decode(item.substr(0, eq)), eq == std::string::npos ? "" : percent_decode(item.substr(eq + 1)));
    }
  }
  return {percent_decode(target.substr(0, q)), params};
}

}  // namespace

EngineReplay::EngineReplay(const std::string& name) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/data/docker/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read recording " + path);
  const json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.contains("exchanges")) throw std::runtime_error("recording " + path + " is not valid");
  exchanges_ = doc["exchanges"];
  std::string templ = (std::filesystem::temp_directory_path() / "flotilla-engine-XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("cannot make a temporary directory for " + path);
  dir_ = templ;
  socket_ = dir_ / "docker.sock";
  server_ = std::make_unique<HttpTestServer>(socket_, [this](const ServedRequest& r) { return answer(r); });
}

EngineReplay::~EngineReplay() {
  server_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

size_t EngineReplay::served() const {
  std::lock_guard lock(mu_);
  return next_;
}

std::vector<std::string> EngineReplay::mismatches() const {
  std::lock_guard lock(mu_);
  return mismatches_;
}

ServedResponse EngineReplay::answer(const ServedRequest& request) {
  std::lock_guard lock(mu_);
  const auto refuse = [&](std::string problem) {
    mismatches_.push_back(problem);
    return ServedResponse{.status = 599, .body = std::move(problem)};
  };
  if (next_ >= exchanges_.size())
    return refuse("unexpected " + request.method + " " + request.target + " after all " + std::to_string(exchanges_.size()) + " exchanges");
  const json& ex = exchanges_[next_];
  const json& want = ex["request"];
  const std::string where = "exchange " + std::to_string(next_) + ": ";
  if (want.value("method", "") != request.method || split(want.value("path", "")) != split(request.target))
    return refuse(where + "expected " + want.value("method", "") + " " + want.value("path", "") + ", got " + request.method + " " +
                  request.target);
  const json headers = want.value("headers", json::object());
  for (const auto& [name, value] : headers.items()) {
    const auto it = request.headers.find(name);
    if (it == request.headers.end() || it->second != value.get<std::string>())
      return refuse(where + "header " + name + " differs: got " + (it == request.headers.end() ? "none" : it->second));
  }
  if (want.contains("body") && json::parse(request.body, nullptr, false) != want["body"])
    return refuse(where + "body differs: got " + request.body);
  ++next_;
  const json& res = ex["response"];
  ServedResponse out;
  out.drop = res.value("drop", false);
  out.status = res.value("status", 200);
  const json body = res.value("body", json(""));
  out.body = body.is_string() ? body.get<std::string>() : body.dump();
  out.headers["Content-Type"] = body.is_string() ? "text/plain" : "application/json";
  out.headers["Api-Version"] = res.value("api_version", "1.41");
  return out;
}

}  // namespace flotilla::test
