#include "ihc/tiling/tiff_open.hpp"

#include <cstdarg>
#include <cstdio>

namespace ihc::tiling {
namespace {

int keep_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* messages = static_cast<TiffMessages*>(user);
  if (!messages || messages->errors.size() >= 16) return 1;
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  messages->errors.push_back((module && *module) ? std::string(module) + ": " + buf : std::string(buf));
  return 1;  // handled: not printed
}

int drop_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

}  // namespace

std::string TiffMessages::joined() const {
  std::string text;
  for (const auto& e : errors) {
    if (text.size() >= 1000) break;
    if (!text.empty()) text += "; ";
    text += e;
  }
  return text;
}

TIFF* open_tiff_quietly(const std::filesystem::path& path, const char* mode, TiffMessages& messages,
                        std::int64_t max_single_alloc) {
  TIFFOpenOptions* options = TIFFOpenOptionsAlloc();
  if (!options) return nullptr;
  if (max_single_alloc > 0) TIFFOpenOptionsSetMaxSingleMemAlloc(options, static_cast<tmsize_t>(max_single_alloc));
  TIFFOpenOptionsSetErrorHandlerExtR(options, keep_error, &messages);
  TIFFOpenOptionsSetWarningHandlerExtR(options, drop_warning, nullptr);
  TIFF* tif = TIFFOpenExt(path.c_str(), mode, options);
  TIFFOpenOptionsFree(options);
  return tif;
}

}  // namespace ihc::tiling
