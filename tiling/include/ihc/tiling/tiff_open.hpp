#pragma once
// Opening a TIFF through libtiff without its process-wide handlers, which print to stderr: the
// handle's errors are kept in a TiffMessages the caller owns (for its one-line error), warnings
// are dropped. The TiffMessages must outlive the handle (libtiff reports through it on every
// later call). OpenSlide opens its TIFFs itself, so openslide_slide.cpp keeps the one global
// handler.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tiffio.h>

namespace ihc::tiling {

struct TiffMessages {
  std::vector<std::string> errors;  // "module: message", in order (at most 16 kept)
  std::string first() const { return errors.empty() ? std::string() : errors.front(); }
  std::string last() const { return errors.empty() ? std::string() : errors.back(); }
  std::string joined() const;  // "a; b; c", at most about 1000 characters
};

// TIFFOpenExt(path, mode) with the handlers above; `max_single_alloc` > 0 caps any one libtiff
// allocation (TIFFOpenOptionsSetMaxSingleMemAlloc). nullptr when libtiff cannot open it.
TIFF* open_tiff_quietly(const std::filesystem::path& path, const char* mode, TiffMessages& messages,
                        std::int64_t max_single_alloc = 0);

// Where a tiled directory's tile runs past the end of the file ("directory 2: tile 7 claims
// 1099511627776 bytes at byte 1024 of a 20480-byte file"), or empty when every tile of every
// tiled directory lies inside it (or libtiff cannot tell). OpenSlide allocates a tile's stated
// byte count before reading it, and a GLib allocation failure aborts the process: files are
// checked here before OpenSlide sees them.
std::string tile_beyond_file(const std::filesystem::path& path);

// The colour subsampling of a JPEG-compressed YCbCr directory (the YCbCrSubsampling tag, 2 x 2
// when absent, as TIFF 6.0 defaults it); 1 x 1 for any other directory (RGB JPEG keeps colour per
// pixel). For the current directory of `tif`.
struct ChromaBlock {
  int x = 1, y = 1;
};
ChromaBlock tiff_chroma_block(TIFF* tif);

// Each tiled directory's size and colour subsampling, in file order: for a reader that learns a
// TIFF-based slide's levels elsewhere (OpenSlide) and matches them by size. Empty when libtiff
// cannot open the file.
struct TiledDirectory {
  std::int64_t width = 0, height = 0;
  ChromaBlock chroma;
};
std::vector<TiledDirectory> tiled_directories(const std::filesystem::path& path);

}  // namespace ihc::tiling
