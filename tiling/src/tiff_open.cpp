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

std::string tile_beyond_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto file_size = static_cast<std::uint64_t>(std::filesystem::file_size(path, ec));
  if (ec) return {};
  TiffMessages messages;
  // No memory map; arrays loaded when asked for, each allocation capped (a hostile count array
  // is libtiff's refusal, not ours: then nothing is said here).
  TIFF* tif = open_tiff_quietly(path, "rmD", messages, std::int64_t{1} << 30);
  if (!tif) return {};
  std::string found;
  int directory = 0;
  do {
    if (!TIFFIsTiled(tif)) continue;
    std::uint64_t *offsets = nullptr, *counts = nullptr;
    if (!TIFFGetField(tif, TIFFTAG_TILEOFFSETS, &offsets) || !TIFFGetField(tif, TIFFTAG_TILEBYTECOUNTS, &counts) ||
        !offsets || !counts)
      continue;
    const std::uint32_t tiles = TIFFNumberOfTiles(tif);
    for (std::uint32_t i = 0; i < tiles && found.empty(); ++i) {
      if (offsets[i] <= file_size && counts[i] <= file_size - offsets[i]) continue;  // no offset + count: it could wrap
      found = "directory " + std::to_string(directory) + ": tile " + std::to_string(i) + " claims " +
              std::to_string(counts[i]) + " bytes at byte " + std::to_string(offsets[i]) + " of a " +
              std::to_string(file_size) + "-byte file";
    }
  } while (found.empty() && ++directory < 4096 && TIFFReadDirectory(tif));
  TIFFClose(tif);
  return found;
}

ChromaBlock tiff_chroma_block(TIFF* tif) {
  std::uint16_t compression = 0, photometric = 0;
  TIFFGetField(tif, TIFFTAG_COMPRESSION, &compression);
  TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  if (compression != COMPRESSION_JPEG || photometric != PHOTOMETRIC_YCBCR) return {};
  std::uint16_t sx = 2, sy = 2;
  TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRSUBSAMPLING, &sx, &sy);
  // TIFF allows 1, 2 and 4; anything else is not a subsampling a decoder would follow.
  const auto valid = [](std::uint16_t v) { return v == 1 || v == 2 || v == 4; };
  if (!valid(sx) || !valid(sy)) return {};
  return {sx, sy};
}

std::vector<TiledDirectory> tiled_directories(const std::filesystem::path& path) {
  TiffMessages messages;
  TIFF* tif = open_tiff_quietly(path, "rmD", messages, std::int64_t{1} << 30);
  if (!tif) return {};
  std::vector<TiledDirectory> found;
  int directory = 0;
  do {
    std::uint32_t w = 0, h = 0;
    if (!TIFFIsTiled(tif) || !TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
      continue;
    found.push_back({w, h, tiff_chroma_block(tif)});
  } while (++directory < 4096 && TIFFReadDirectory(tif));
  TIFFClose(tif);
  return found;
}

}  // namespace ihc::tiling
