#pragma once
// Which stain vectors a command uses: `--stains default|estimate|FILE`.
//
//  - "default": the vectors from the command line (--stain-h, --stain-dab, --i0, or the built-in
//    defaults), unchanged.
//  - "estimate": per-slide estimation (scoring/stain_estimation.hpp). The background I0 comes from
//    the glass of the slide overview (read_thumbnail at 1024 px); the vectors from up to 16 tissue
//    tiles of 256 x 256 px read at about 0.5 µm/px (finer pixels are purer: on synthetic 20x slides
//    1 µm/px tiles gave 3 degrees of haematoxylin error, 0.5 µm/px 2), or from the overview itself
//    when it is 1 µm/px or finer (plain images, small slides). About 0.1 s on a 20000 x 15000 slide. When the estimate is not trustworthy the command-line vectors are kept (with
//    the estimated I0) and `warning` says why; the caller reports it.
//  - anything else is a file: JSON {"hematoxylin":[r,g,b],"dab":[r,g,b],"i0":255} ("i0" optional;
//    a whole `score --json` report is accepted too, its "stains" object is used), or a text file
//    holding StainVectors::to_string(), e.g. "hematoxylin=0.65,0.704,0.286;dab=0.268,0.57,0.776;i0=255".
#include <cstddef>
#include <filesystem>
#include <string>

#include "ihc/scoring/stain_estimation.hpp"
#include "ihc/scoring/stains.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::engine {

struct StainChoice {
  scoring::StainVectors vectors;
  std::string source;    // "default", "estimated" or "file:<path>"; "default" also when estimation fell back
  std::string warning;   // non-empty when estimation fell back to the command-line vectors
  std::size_t pixels_used = 0;       // estimate: stained pixels that went into it
  bool background_estimated = false; // estimate: I0 came from the slide's glass
};

// Throws EngineError: usage for an empty mode; input naming the file when it is missing,
// unreadable or malformed, or when the slide cannot be read for estimation.
StainChoice choose_stains(const tiling::Slide& slide, const std::string& mode,
                          const scoring::StainVectors& cli_default);

// The file part of choose_stains. `default_i0` is used when the file gives none.
scoring::StainVectors read_stains_file(const std::filesystem::path& path, double default_i0);

// The estimate part of choose_stains (throws tiling::SlideError when the overview cannot be read).
scoring::StainEstimate estimate_slide_stains(const tiling::Slide& slide, const scoring::StainVectors& reference,
                                             scoring::BackgroundEstimate* background = nullptr,
                                             const scoring::StainEstimationParams& params = {});

}  // namespace ihc::engine
