#include "ihc/cli/options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>


namespace ihc::cli {

CLI::Validator finite_positive() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v <= 0)
          return "must be a finite number above zero, got '" + text + "'";
        return {};
      },
      "POSITIVE");
}

void add_scoring_options(CLI::App& cmd, engine::ScoringSettings& cli) {
  cmd.add_option("--mpp", cli.mpp,
                 "Micrometres per pixel of the image (needed for plain images and slides without a resolution; "
                 "overrides the file's value)")
      ->check(finite_positive());
  cmd.add_option("--analysis-mpp", cli.analysis_mpp, "Resolution at which cells are measured, um/px")
      ->check(finite_positive())
      ->capture_default_str();
  cmd.add_option("--threads", cli.threads, "Worker threads (default: all cores; more than the cores runs as all cores)")->check(CLI::Range(1, 1024));
  cmd.add_option("--guideline", cli.guideline,
                 "Scoring rules: asco-cap-2018 or asco-cap-2007 (breast), gastric (ASCO/CAP/ASCP 2016: lateral and "
                 "basolateral staining counts as complete, thresholds at >= 10 %)")
      ->check(CLI::IsMember(std::vector<std::string>(scoring::kGuidelineNames.begin(), scoring::kGuidelineNames.end())))
      ->capture_default_str();
  cmd.add_option("--specimen", cli.specimen,
                 "With --guideline gastric: resection (per cent of tumour cells) or biopsy (a cluster of at least 5 "
                 "cohesive tumour cells decides)")
      ->check(CLI::IsMember({"resection", "biopsy"}))
      ->capture_default_str();
  cmd.add_option("--stain-h", cli.stain_h, "Haematoxylin OD vector r,g,b (default 0.650,0.704,0.286)");
  cmd.add_option("--stain-dab", cli.stain_dab, "DAB OD vector r,g,b (default 0.268,0.570,0.776)");
  cmd.add_option("--stains", cli.stains,
                 "Stain vectors: default (the --stain-h/--stain-dab values), estimate (Macenko-style, from this "
                 "slide, falling back to the defaults with a warning), or a FILE (JSON or a report)")
      ->capture_default_str();
  cmd.add_option("--config", cli.config,
                 "JSON file overriding the cell thresholds (see docs/algorithm.md, Thresholds); the report records its hash");
  cmd.add_option("--roi", cli.roi,
                 "Region of interest, level-0 pixels: GeoJSON (QuPath annotation export) or Aperio ImageScope "
                 "XML; only tumour cells inside are scored; annotations classed Ignore* or Exclude (QuPath) or "
                 "negative regions (ImageScope) are left out (with only those: the whole slide without them)");
  cmd.add_option("--decode", cli.decode,
                 "fast: JPEG tiles decoded at reduced DCT scale where the analysis resolution allows; exact: "
                 "full-size decoding and area averaging, identical results through every reader (slower)")
      ->check(CLI::IsMember({"fast", "exact"}))
      ->capture_default_str();
  cmd.add_flag("--read-glass", cli.read_glass,
               "Decode every source tile of an analysis tile, even those the tissue overview shows as glass "
               "(default: glass tiles are filled with the glass colour, not decoded; --decode exact always reads all)");
  cmd.add_option("--i0", cli.i0, "Background (incident light) intensity for optical density")
      ->check(CLI::Range(2.0, 255.0))
      ->capture_default_str();
}

void apply_stains_and_warn(const tiling::Slide& slide, const ScoringSettings& settings, ScoreOptions& options) {
  for (const std::string& w : slide.warnings())
    std::fprintf(stderr, "ihcscore: warning: %s: %s\n", slide.path().c_str(), w.c_str());
  const std::string warning = apply_stain_choice(slide, settings, options);
  if (!warning.empty()) std::fprintf(stderr, "ihcscore: warning: %s\n", warning.c_str());
}

}  // namespace ihc::cli
