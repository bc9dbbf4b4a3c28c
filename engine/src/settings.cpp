#include "ihc/engine/settings.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "ihc/engine/config.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/roi.hpp"
#include "ihc/engine/stain_choice.hpp"

namespace ihc::engine {

ScoreOptions make_score_options(const ScoringSettings& s) {
  ScoreOptions o;
  const auto check_mpp = [](const char* option, double v) {
    if (!(v >= kMinMpp && v <= kMaxMpp)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s: %g um/px is not a scan resolution (%g-%g um/px)", option, v, kMinMpp, kMaxMpp);
      throw EngineError(ErrorKind::usage, buf);
    }
  };
  check_mpp("--analysis-mpp", s.analysis_mpp);
  if (s.mpp) check_mpp("--mpp", *s.mpp);
  o.analysis_mpp = s.analysis_mpp;
  // The command line checks these as it parses; the Python module relies on the checks here.
  if (s.threads < 0 || s.threads > 1024)
    throw EngineError(ErrorKind::usage, "threads: " + std::to_string(s.threads) + " is not in 1-1024");
  o.threads = s.threads;
  const auto guideline = scoring::parse_guideline(s.guideline);
  if (!guideline) throw EngineError(ErrorKind::usage, "guideline: unknown '" + s.guideline + "'");
  o.guideline = *guideline;
  const auto specimen = scoring::parse_specimen(s.specimen);
  if (!specimen) throw EngineError(ErrorKind::usage, "specimen: '" + s.specimen + "' is not resection or biopsy");
  o.specimen = *specimen;
  if (s.decode != "fast" && s.decode != "exact")
    throw EngineError(ErrorKind::usage, "decode: '" + s.decode + "' is not fast or exact");
  if (!(s.i0 >= 2.0 && s.i0 <= 255.0)) throw EngineError(ErrorKind::usage, "i0: must be between 2 and 255");
  if (o.specimen == scoring::Specimen::Biopsy && o.guideline != scoring::Guideline::Gastric)
    throw EngineError(ErrorKind::usage, "--specimen biopsy applies to the gastric rules only (--guideline gastric)");
  o.exact_decode = s.decode == "exact";
  o.read_glass = s.read_glass;
  const auto defaults = scoring::StainVectors::defaults();
  scoring::Rgb3 h = defaults.hematoxylin, dab = defaults.dab;
  if (!s.stain_h.empty()) {
    const auto v = scoring::parse_rgb3(s.stain_h);
    if (!v) throw EngineError(ErrorKind::usage, "--stain-h: expected three numbers r,g,b, got '" + s.stain_h + "'");
    h = *v;
  }
  if (!s.stain_dab.empty()) {
    const auto v = scoring::parse_rgb3(s.stain_dab);
    if (!v) throw EngineError(ErrorKind::usage, "--stain-dab: expected three numbers r,g,b, got '" + s.stain_dab + "'");
    dab = *v;
  }
  const auto stains = scoring::StainVectors::make(h, dab, s.i0);
  if (!stains)
  {
    // Both vectors as used, the default ones included (a user may have given only one).
    const auto text = [](const scoring::Rgb3& v) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%g,%g,%g", v[0], v[1], v[2]);
      return std::string(buf);
    };
    throw EngineError(ErrorKind::usage, "stain vectors must be non-negative, non-zero and not parallel (haematoxylin " +
                                            text(h) + (s.stain_h.empty() ? " (default)" : "") + ", DAB " + text(dab) +
                                            (s.stain_dab.empty() ? " (default)" : "") + ")");
  }
  o.stains = *stains;
  if (!s.config.empty()) apply_config_file(s.config, o);
  if (!s.roi.empty()) {
    o.roi = load_roi(s.roi);
    o.roi_source = s.roi;
  }
  return o;
}

std::string apply_stain_choice(const tiling::Slide& slide, const ScoringSettings& s, ScoreOptions& options) {
  const StainChoice choice = choose_stains(slide, s.stains, options.stains);
  options.stains = choice.vectors;
  options.stains_source = choice.source;
  return choice.warning;
}

std::unique_ptr<tiling::Slide> open_for_scoring(const std::string& path, const ScoringSettings& s,
                                                const tiling::OpenOptions& options, MppUse use,
                                                const std::string& no_mpp_hint) {
  std::unique_ptr<tiling::Slide> slide;
  tiling::OpenOptions open = options;
  // IHCSCORE_READER=openslide serves every slide through OpenSlide (differential checks, and a
  // way round a direct-reader problem); unset or "auto": the direct reader where it applies.
  if (const char* reader = std::getenv("IHCSCORE_READER"); reader && std::string(reader) == "openslide")
    open.force_openslide = true;
  try {
    slide = tiling::open_slide(path, open);
  } catch (const tiling::SlideError& e) {
    throw EngineError(ErrorKind::input, path + ": " + e.what());
  }
  // A file's resolution outside what scanners deliver is damage, not a resolution: --mpp (or a
  // manifest's mpp) replaces it; without one the slide is refused.
  const bool implausible = slide->mpp() && !(*slide->mpp() >= kMinMpp && *slide->mpp() <= kMaxMpp);
  if (s.mpp && (use == MppUse::override_file || !slide->mpp() || implausible)) {
    slide->set_mpp(*s.mpp);
  } else if (implausible) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "the file records %g um/px, not a scan resolution (%g-%g um/px); ", *slide->mpp(),
                  kMinMpp, kMaxMpp);
    throw EngineError(ErrorKind::input, path + ": " + buf + no_mpp_hint);
  }
  if (!slide->mpp())
    throw EngineError(ErrorKind::usage, path + ": " +
                                            (slide->vendor() == "image" ? std::string("a plain image has no resolution")
                                                                        : std::string("the slide records no resolution")) +
                                            "; " + no_mpp_hint);
  return slide;
}

}  // namespace ihc::engine
