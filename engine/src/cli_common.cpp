#include "ihc/engine/cli_common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ihc/engine/errors.hpp"
#include "ihc/engine/config.hpp"
#include "ihc/engine/roi.hpp"
#include "ihc/engine/stain_choice.hpp"

namespace ihc::engine {

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

void add_scoring_options(CLI::App& cmd, ScoringCli& cli) {
  cmd.add_option("--mpp", cli.mpp,
                 "Micrometres per pixel of the image (needed for plain images and slides without a resolution; "
                 "overrides the file's value)")
      ->check(finite_positive());
  cmd.add_option("--analysis-mpp", cli.analysis_mpp, "Resolution at which cells are measured, um/px")
      ->check(finite_positive())
      ->capture_default_str();
  cmd.add_option("--threads", cli.threads, "Worker threads (default: all cores)")->check(CLI::Range(1, 1024));
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
                 "JSON file overriding the cell thresholds (see README, Thresholds); the report records its hash");
  cmd.add_option("--roi", cli.roi,
                 "GeoJSON region of interest (QuPath annotation export; level-0 pixels): only tumour cells "
                 "inside are scored");
  cmd.add_option("--decode", cli.decode,
                 "fast: JPEG tiles decoded at reduced DCT scale where the analysis resolution allows; exact: "
                 "full-size decoding and area averaging, identical results through every reader (slower)")
      ->check(CLI::IsMember({"fast", "exact"}))
      ->capture_default_str();
  cmd.add_option("--i0", cli.i0, "Background (incident light) intensity for optical density")
      ->check(CLI::Range(2.0, 255.0))
      ->capture_default_str();
}

ScoreOptions make_score_options(const ScoringCli& cli) {
  ScoreOptions o;
  o.analysis_mpp = cli.analysis_mpp;
  o.threads = cli.threads;
  o.guideline = *scoring::parse_guideline(cli.guideline);
  o.specimen = *scoring::parse_specimen(cli.specimen);
  if (o.specimen == scoring::Specimen::Biopsy && o.guideline != scoring::Guideline::Gastric)
    throw CommandError(kExitUsage, "--specimen biopsy applies to the gastric rules only (--guideline gastric)");
  o.exact_decode = cli.decode == "exact";
  const auto defaults = scoring::StainVectors::defaults();
  scoring::Rgb3 h = defaults.hematoxylin, dab = defaults.dab;
  if (!cli.stain_h.empty()) {
    const auto v = scoring::parse_rgb3(cli.stain_h);
    if (!v) throw CommandError(kExitUsage, "--stain-h: expected three numbers r,g,b, got '" + cli.stain_h + "'");
    h = *v;
  }
  if (!cli.stain_dab.empty()) {
    const auto v = scoring::parse_rgb3(cli.stain_dab);
    if (!v) throw CommandError(kExitUsage, "--stain-dab: expected three numbers r,g,b, got '" + cli.stain_dab + "'");
    dab = *v;
  }
  const auto stains = scoring::StainVectors::make(h, dab, cli.i0);
  if (!stains)
    throw CommandError(kExitUsage,
                       "stain vectors must be non-negative, non-zero and not parallel (haematoxylin " +
                           cli.stain_h + ", DAB " + cli.stain_dab + ")");
  o.stains = *stains;
  if (!cli.config.empty()) apply_config_file(cli.config, o);
  if (!cli.roi.empty()) {
    o.roi = load_roi(cli.roi);
    o.roi_source = cli.roi;
  }
  return o;
}

void apply_stain_choice(const tiling::Slide& slide, const ScoringCli& cli, ScoreOptions& options) {
  const StainChoice choice = choose_stains(slide, cli.stains, options.stains);
  options.stains = choice.vectors;
  options.stains_source = choice.source;
  if (!choice.warning.empty()) std::fprintf(stderr, "ihcscore: warning: %s\n", choice.warning.c_str());
}

std::unique_ptr<tiling::Slide> open_for_scoring(const std::string& path, const ScoringCli& cli,
                                                const tiling::OpenOptions& options) {
  std::unique_ptr<tiling::Slide> slide;
  tiling::OpenOptions open = options;
  // IHCSCORE_READER=openslide serves every slide through OpenSlide (differential checks, and a
  // way round a direct-reader problem); unset or "auto": the direct reader where it applies.
  if (const char* reader = std::getenv("IHCSCORE_READER"); reader && std::string(reader) == "openslide")
    open.force_openslide = true;
  try {
    slide = tiling::open_slide(path, open);
  } catch (const tiling::SlideError& e) {
    throw CommandError(kExitInput, path + ": " + e.what());
  }
  if (cli.mpp) slide->set_mpp(*cli.mpp);
  if (!slide->mpp())
    throw CommandError(kExitUsage, path + ": " +
                                       (slide->vendor() == "image" ? std::string("a plain image has no resolution")
                                                                   : std::string("the slide records no resolution")) +
                                       "; give micrometres per pixel with --mpp (e.g. --mpp 0.25 for 40x)");
  return slide;
}

}  // namespace ihc::engine
