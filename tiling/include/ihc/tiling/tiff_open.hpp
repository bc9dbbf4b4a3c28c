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

}  // namespace ihc::tiling
