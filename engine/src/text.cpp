#include "ihc/engine/text.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace ihc::engine {

namespace {
// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlongs, no surrogates,
// at most U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 3;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else return 0;
  if (i + n > text.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  return n;
}
}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (const std::size_t n = utf8_sequence(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(text[i]));
      out += buf;
      ++i;
    }
  }
  return out;
}

std::string one_line(std::string_view text) {
  std::string s = valid_utf8(text);
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

namespace {
nlohmann::json with_valid_utf8(const nlohmann::json& j) {
  if (j.is_string()) return valid_utf8(j.get_ref<const std::string&>());
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(with_valid_utf8(v));
    return out;
  }
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[valid_utf8(k)] = with_valid_utf8(v);
    return out;
  }
  return j;
}

// Whether any string or key in `j` is not UTF-8 (a scan: no copy of a large report).
bool has_invalid_utf8(const nlohmann::json& j) {
  const auto bad = [](const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t n = utf8_sequence(s, i);
      if (n == 0) return true;
      i += n;
    }
    return false;
  };
  if (j.is_string()) return bad(j.get_ref<const std::string&>());
  if (j.is_array()) {
    for (const auto& v : j)
      if (has_invalid_utf8(v)) return true;
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items())
      if (bad(k) || has_invalid_utf8(v)) return true;
  }
  return false;
}
}  // namespace

std::string json_text(const nlohmann::json& j, int indent) {
  return has_invalid_utf8(j) ? with_valid_utf8(j).dump(indent) : j.dump(indent);
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string content_hash(std::string_view text) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a64(text)));
  return buf;
}

}  // namespace ihc::engine
