#pragma once
// Synthetic HER2 IHC whole-slide images with known answers (`ihcscore synth`).
//
// The slide is a pure function of SynthOptions: every pixel is computed from the seed and its
// own level-0 coordinates (hash-based randomness, analytic optical blur), so any region can be
// rendered alone, tiles render in parallel, and the file is byte-identical whatever the thread
// count. Content, in physical units converted by the resolution:
//   - background about 240 with slight noise;
//   - tissue: a few large irregular blobs (40-60 % of the slide) of pale stroma (faint fibrous
//     haematoxylin, sparse elongated fibroblast and round lymphocyte nuclei, no DAB) holding
//     tumour nests (50-70 % of the tissue);
//   - tumour cells on a jittered hexagonal grid (12.5 µm), each the Voronoi region of its centre
//     capped at about 8 µm, with a textured irregular nucleus (radius 3-4.5 µm) and faint
//     cytoplasm; membrane DAB along the outline by class: 0 none; 1+ faint (peak 0.08-0.16)
//     and partial (30-60 % of the outline in 1-3 arcs); 2+ weak-to-moderate (0.25-0.45)
//     complete; 3+ intense (0.8-1.2) complete and thicker. Peaks are DAB concentrations with
//     unit stain vectors after the optical blur. Classes come in patches of about 110 µm
//     (drawn from the mix), with 8 % of cells drawn individually;
//   - colours by Beer-Lambert: I = 240 * 10^-(c_H * h + c_DAB * d + residual), plus noise.
// The truth (cells per class) is counted from the cell centres, without rendering.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "ihc/scoring/guideline.hpp"
#include "ihc/tiling/pyramid_writer.hpp"
#include "ihc/tiling/slide.hpp"

namespace ihc::synth {

// Progress of a long write: level-0 tiles done of total. May be called from several threads at once.
using SynthProgress = std::function<void(std::int64_t done, std::int64_t total)>;

inline constexpr const char* kSynthGeneratorVersion = "1";

struct SynthOptions {
  std::int64_t width = 20000;   // level-0 pixels, at least 256
  std::int64_t height = 15000;
  double mpp = 0.25;            // 0.25 (AppMag 40) or 0.5 (AppMag 20)
  std::uint64_t seed = 1;
  std::array<double, 4> mix{0.25, 0.25, 0.25, 0.25};  // tumour cells in 0, 1+, 2+, 3+
  int quality = 80;             // JPEG
  int tile = 256;               // 240 or 256
  std::array<double, 3> stain_h{0.650, 0.704, 0.286};    // optical-density vectors (R, G, B)
  std::array<double, 3> stain_dab{0.268, 0.570, 0.776};
  int threads = 0;              // 0: all cores (does not change the output)
};

// Checks and normalises (mix to sum 1, stain vectors to unit length). Throws
// std::invalid_argument with a one-line message naming the option ("--mix: ...").
SynthOptions normalise_synth_options(const SynthOptions& options);

// Parses "a,b,c,..." (exactly `count` finite numbers); throws std::invalid_argument naming `option`.
std::vector<double> parse_number_list(const std::string& text, std::size_t count, const std::string& option);

struct SynthTruth {
  SynthOptions options;                 // normalised
  std::vector<tiling::Level> levels;    // as written (empty when only counted)
  scoring::CellCounts counts;           // tumour cells whose centre lies in the slide
  scoring::ClassPercent percent;
  scoring::SlideScore score_2018 = scoring::SlideScore::NotEvaluable;
  scoring::SlideScore score_2007 = scoring::SlideScore::NotEvaluable;
  scoring::Her2Category category_2018 = scoring::Her2Category::NotEvaluable;
  double tissue_fraction_target = 0;    // share of the slide the tissue blobs aim to cover
  double tumour_fraction_target = 0;    // share of the tissue the nests aim to cover
};

// Counts the tumour cells by class (cheap: enumerates cell centres, renders nothing) and applies
// the ASCO/CAP rules. Throws std::invalid_argument for bad options.
SynthTruth compute_synth_truth(const SynthOptions& options);

// Renders level-0 pixels [x, x + w) x [y, y + h) as CV_8UC3 in RGB order, exactly as the slide
// written with the same options holds them before JPEG compression. Pixels outside the slide
// are rendered too (the image is defined everywhere). Uses options.threads.
cv::Mat render_synth_region(const SynthOptions& options, std::int64_t x, std::int64_t y, int w, int h);

// One tumour cell of the truth, in level-0 pixel coordinates.
struct SynthCell {
  double x = 0, y = 0;
  scoring::CellClass cell_class = scoring::CellClass::Negative;
};
// The tumour cells whose centre lies in [x, x + w) x [y, y + h), in row order.
std::vector<SynthCell> synth_cells_in(const SynthOptions& options, std::int64_t x, std::int64_t y,
                                      std::int64_t w, std::int64_t h);

// How write_synthetic_slide lays out the file (size, tile, JPEG quality, AppMag, MPP, and the
// extra Aperio properties "Generator" and "Seed").
tiling::PyramidOptions synth_pyramid_options(const SynthOptions& options);

// Writes the slide to `out` (an Aperio SVS: tiled JPEG pyramid, levels 4x apart, thumbnail),
// streaming in bands of tile rows with bounded memory. `progress` (optional) counts level-0
// tiles. Throws std::invalid_argument for bad options and tiling::SlideError when the file
// cannot be written (temporaries are removed; `out` itself is left for the caller to remove).
SynthTruth write_synthetic_slide(const std::filesystem::path& out, const SynthOptions& options,
                                 const SynthProgress& progress = {});

// The truth file's content (OUT.svs.truth.json): tumour_cells, cells, percent, expected_score,
// expected_category and the generator parameters.
nlohmann::json to_json(const SynthTruth& truth);

}  // namespace ihc::synth
