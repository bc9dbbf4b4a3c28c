#include "ihc/engine/report.hpp"

#include "ihc/engine/confidence.hpp"
#include "ihc/engine/config.hpp"
#include "ihc/engine/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ihc::engine {

std::string version_string() { return IHC_VERSION; }

double round_to(double value, int digits) {
  const double k = std::pow(10.0, digits);
  return std::round(value * k) / k;
}

namespace {
nlohmann::json rgb_json(const scoring::Rgb3& v) {
  return nlohmann::json::array({round_to(v[0], 6), round_to(v[1], 6), round_to(v[2], 6)});
}
}  // namespace

std::string cytoplasmic_warning(const SlideResult& r, const ScoreOptions& o) {
  if (r.cells_cytoplasmic == 0) return {};
  const double total = static_cast<double>(std::max<std::int64_t>(1, r.counts.total()));
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "cytoplasmic DAB pattern in %lld tile(s): %lld counted cells (%.1f %%) had cytoplasm DAB at least "
                "%.2f of their membrane DAB and were scored 0, not membrane-positive; HER2 is read on the membrane "
                "only: check the antibody, the controls and the field",
                static_cast<long long>(r.tiles_cytoplasmic), static_cast<long long>(r.cells_cytoplasmic),
                100.0 * static_cast<double>(r.cells_cytoplasmic) / total, o.cells.cytoplasmic_cell_ratio);
  return buf;
}

std::string pigment_warning(const SlideResult& r) {
  const double total = static_cast<double>(std::max<std::int64_t>(1, r.counts.total()));
  if (r.cells_pigment == 0 || static_cast<double>(r.cells_pigment) < 0.02 * total) return {};
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "pigment: %lld counted cells (%.1f %%) had brown-black granules on their outline and were scored 0, "
                "not membrane-positive; check the field for melanin, haemosiderin or formalin pigment",
                static_cast<long long>(r.cells_pigment), 100.0 * static_cast<double>(r.cells_pigment) / total);
  return buf;
}

std::string quality_warning(const SlideResult& r, bool folds_judged) {
  if (r.cells_fold == 0 && r.cells_focus == 0 && r.fold_um2 <= 0 && r.focus_um2 <= 0) return {};
  const double tissue = std::max(1.0, r.tissue_um2);
  const double scored = static_cast<double>(std::max<std::int64_t>(1, r.counts.total() + r.cells_fold + r.cells_focus));
  // Noted only when it matters: a notable share of the tissue or of the tumour cells.
  const double area_share = (r.fold_um2 + r.focus_um2) / tissue;
  const double cell_share = static_cast<double>(r.cells_fold + r.cells_focus) / scored;
  if (area_share < 0.02 && cell_share < 0.02) return {};
  char buf[512];
  if (!folds_judged) {  // folds are off by default: say only what was judged
    std::snprintf(buf, sizeof buf,
                  "%.1f %% of the judged tissue is out of focus (%.3f mm2, %lld tile(s)); %lld detected tumour cells "
                  "there were left out of the score: check the slide, rescan or score another area",
                  100.0 * r.focus_um2 / tissue, r.focus_um2 / 1e6, static_cast<long long>(r.tiles_focus),
                  static_cast<long long>(r.cells_focus));
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "%.1f %% of the judged tissue looks folded (%.3f mm2, %lld tile(s)) and %.1f %% out of focus (%.3f mm2, "
                "%lld tile(s)); %lld and %lld detected tumour cells there were left out of the score: check the "
                "slide, rescan or score another area",
                100.0 * r.fold_um2 / tissue, r.fold_um2 / 1e6, static_cast<long long>(r.tiles_fold),
                100.0 * r.focus_um2 / tissue, r.focus_um2 / 1e6, static_cast<long long>(r.tiles_focus),
                static_cast<long long>(r.cells_fold), static_cast<long long>(r.cells_focus));
  return buf;
}

// Nuclei that read more than a quarter of their haematoxylin as DAB are beyond what the fixed
// nuclear-ridge rule (ratio nuclear_ridge_h_ratio, 4) recognises: their edges can pass for faint
// membranes (docs/validity.md, "Stain crosstalk"), unless cells bounded by such ridges are left
// out (ridge_h_excess_ratio, on by default) or the ridge rule follows the leak.
std::string leak_warning(const SlideResult& r, const ScoreOptions& o) {
  const double fixed = o.cells.nuclear_ridge_h_ratio > 0 ? 1.0 / o.cells.nuclear_ridge_h_ratio : 0.0;
  if (o.cells.ridge_h_excess_ratio > 0 || o.cells.nuclear_ridge_follows_leak || fixed <= 0 ||
      r.hematoxylin_in_dab <= fixed)
    return {};
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "nuclei read %.2f x their haematoxylin as DAB (a purple counterstain, or stain vectors off the slide's): "
                "faint membranes beside nuclei may be counterstain; {\"cells\": {\"nuclear_ridge_follows_leak\": true}} "
                "in a --config judges them by that leak",
                r.hematoxylin_in_dab);
  return buf;
}

// Detected cells the tumour-cell rules left out, by rule (a cell failing two counts under both).
nlohmann::json left_out_json(const SlideResult& r) {
  nlohmann::json j = nlohmann::json::object();
  for (int b = 0; b < scoring::kLeftOutRules; ++b)
    j[scoring::left_out_reasons(static_cast<std::uint8_t>(1u << b))] = r.left_out_by_rule[static_cast<std::size_t>(b)];
  return j;
}

// Everything the reader and the scorer noticed that a reader of the result should know.
std::vector<std::string> warnings(const SlideResult& r, const ScoreOptions& o) {
  std::vector<std::string> out = r.slide_warnings;
  for (std::string w : {cytoplasmic_warning(r, o), pigment_warning(r), quality_warning(r, o.quality.folds), leak_warning(r, o)})
    if (!w.empty()) out.push_back(std::move(w));
  return out;
}

nlohmann::json report_json(const SlideResult& r, const ScoreOptions& o) {
  using nlohmann::json;
  const auto& c = o.cells;
  json j;
  j["version"] = version_string();
  j["score"] = std::string(scoring::to_string(r.score));
  j["category"] = std::string(scoring::to_string(r.category));
  j["guideline"] = std::string(scoring::to_string(o.guideline));
  if (o.guideline == scoring::Guideline::Gastric) j["specimen"] = std::string(scoring::to_string(o.specimen));
  if (!r.not_evaluable_reason.empty()) j["not_evaluable_reason"] = r.not_evaluable_reason;
  if (r.score == scoring::SlideScore::TwoPlus)
    j["reflex_ish"] = "equivocal: reflex ISH (in-situ hybridisation) testing of this specimen is recommended";
  if (r.score != scoring::SlideScore::NotEvaluable) {
    const DecisiveMargin m = decisive_margin(r, o);
    j["decisive"] = {{"metric", m.metric},
                     {"percent", round_to(m.percent, 3)},
                     {"threshold", m.threshold},
                     {"margin", round_to(m.percent - m.threshold, 3)},
                     {"ci95", {round_to(m.ci95[0], 3), round_to(m.ci95[1], 3)}},
                     {"ci_method", o.biopsy_rule() ? "none: a count of cells"
                                                   : "wilson over cells, union with a bootstrap over tiles (1000 resamples, fixed seed)"},
                     {"borderline", m.borderline}};
  }
  j["slide"] = {{"path", r.path},     {"vendor", r.vendor}, {"reader", r.reader},
                {"width", r.width},   {"height", r.height}, {"levels", r.levels},
                {"mpp", round_to(r.mpp_slide, 6)}, {"decode", o.exact_decode ? "exact" : "fast"},
                {"colour_restored", r.chroma_x > 1 || r.chroma_y > 1
                                        ? std::to_string(r.chroma_x) + "x" + std::to_string(r.chroma_y)
                                        : std::string("no")}};
  j["mpp_analysis"] = round_to(r.mpp_analysis, 6);
  j["stain_check"] = {{"eosin_fraction", round_to(r.eosin_fraction, 4)},
                      {"max_eosin_fraction", o.stain_check.max_eosin_fraction},
                      {"colour_fraction", round_to(r.colour.colour_fraction, 4)},
                      {"min_colour_fraction", o.stain_check.min_colour_fraction},
                      {"off_stain_fraction", round_to(r.colour.off_stain_fraction, 4)},
                      {"max_off_stain_fraction", o.stain_check.max_off_stain_fraction},
                      {"dab_in_hematoxylin", round_to(r.dab_in_hematoxylin, 3)},
                      {"hematoxylin_in_dab", round_to(r.hematoxylin_in_dab, 3)}};
  if (!o.roi.empty())
    j["roi"] = {{"file", o.roi_source},
                {"polygons", o.roi.polygons().size()},
                {"excluded_polygons", o.roi.excluded().size()},
                {"area_mm2", round_to(r.roi_px2 * r.mpp_slide * r.mpp_slide / 1e6, 4)}};
  j["cells"] = {{"total", r.counts.total()},
                {"detected", r.cells_detected},
                {"cytoplasmic", r.cells_cytoplasmic},
                {"pigment", r.cells_pigment},
                {"lateral", r.cells_lateral},
                {"excluded_fold", r.cells_fold},
                {"excluded_focus", r.cells_focus},
                {"left_out", left_out_json(r)},
                {"by_class",
                 {{"0", r.counts.by_class[0]}, {"1+", r.counts.by_class[1]}, {"2+", r.counts.by_class[2]},
                  {"3+", r.counts.by_class[3]}}}};
  if (o.guideline == scoring::Guideline::Gastric && o.specimen == scoring::Specimen::Biopsy)
    j["largest_cluster"] = {{"1+", r.largest_cluster[1]}, {"2+", r.largest_cluster[2]}, {"3+", r.largest_cluster[3]},
                            {"min_cells", o.rules.biopsy_cluster_cells}, {"cohesive_um", o.rules.cohesive_um}};
  j["percent"] = {{"0", round_to(r.percent.p0, 3)},
                  {"1+", round_to(r.percent.p1, 3)},
                  {"2+", round_to(r.percent.p2, 3)},
                  {"3+", round_to(r.percent.p3, 3)},
                  {"complete", round_to(r.percent.complete(), 3)},
                  {"complete_intense", round_to(r.percent.complete_intense(), 3)},
                  {"any_membrane", round_to(r.percent.any_membrane(), 3)}};
  j["tiles"] = {{"total", r.tiles_total},
                {"tissue", r.tiles_tissue},
                {"analysed", r.tiles_analysed},
                {"failed", r.tiles_failed},
                {"cytoplasmic_pattern", r.tiles_cytoplasmic},
                {"fold", r.tiles_fold},
                {"out_of_focus", r.tiles_focus},
                {"size_px", o.tile_px},
                {"halo_um", halo_um_for(o)},
                {"read_level", r.read_level},
                {"source_reads_skipped_as_glass", r.tile_reads_skipped}};
  j["quality"] = {{"tissue_mm2", round_to(r.tissue_um2 / 1e6, 4)},
                  {"fold_mm2", round_to(r.fold_um2 / 1e6, 4)},
                  {"out_of_focus_mm2", round_to(r.focus_um2 / 1e6, 4)},
                  {"fold_fraction", round_to(r.tissue_um2 > 0 ? r.fold_um2 / r.tissue_um2 : 0.0, 4)},
                  {"out_of_focus_fraction", round_to(r.tissue_um2 > 0 ? r.focus_um2 / r.tissue_um2 : 0.0, 4)},
                  {"focus_reference_sharpness",
                   r.focus_reference > 0 ? json(round_to(r.focus_reference, 4)) : json(nullptr)},
                  {"out_of_focus_blocks_by_slide_reference", r.blocks_focus_slide}};
  j["stains"] = {{"hematoxylin", rgb_json(o.stains.hematoxylin)},
                 {"dab", rgb_json(o.stains.dab)},
                 {"residual", rgb_json(o.stains.residual)},
                 {"i0", round_to(o.stains.i0, 3)},
                 {"source", o.stains_source},
                 {"text", o.stains.to_string()}};
  j["thresholds"] = {{"faint_od", c.faint_od},
                     {"moderate_od", c.moderate_od},
                     {"intense_od", c.intense_od},
                     {"min_membrane_contrast_od", c.min_membrane_contrast_od},
                     {"complete_fraction", c.complete_fraction},
                     {"partial_min_fraction", c.partial_min_fraction},
                     {"intense_incomplete_fraction", c.intense_incomplete_fraction},
                     {"noise_floor_percent", o.rules.noise_floor_percent}};
  j["cell_rules"] = {{"nucleus_radius_um", c.nucleus_radius_um},
                     {"min_nucleus_area_um2", c.min_nucleus_area_um2},
                     {"max_nucleus_area_um2", c.max_nucleus_area_um2},
                     {"max_cell_radius_um", c.max_cell_radius_um},
                     {"neighbourhood_um", c.neighbourhood_um},
                     {"min_neighbours", c.min_neighbours},
                     {"ridge_h_excess_ratio", c.ridge_h_excess_ratio}};
  if (const auto w = warnings(r, o); !w.empty()) j["warnings"] = w;
  j["config"] = config_json(o);
  if (!o.config_source.empty()) {
    j["config"]["file"] = o.config_source;
    j["config"]["hash"] = o.config_hash;
  }
  j["threads"] = r.threads;
  j["elapsed_s"] = round_to(r.elapsed_s, 3);
  return j;
}

std::string report_summary(const SlideResult& r, const ScoreOptions& o) {
  char buf[1024];
  std::string out;
  std::snprintf(buf, sizeof buf, "%s\n  HER2 IHC score: %s  (%s%s, %s)\n", valid_utf8(r.path).c_str(),
                std::string(scoring::to_string(r.score)).c_str(), std::string(scoring::to_string(o.guideline)).c_str(),
                o.biopsy_rule() ? " biopsy" : "", std::string(scoring::to_string(r.category)).c_str());
  out += buf;
  if (!o.roi.empty()) {  // what was scored is not the whole slide: say so where the score is read
    const std::size_t left_out = o.roi.excluded().size();
    const std::string without = left_out == 0 ? std::string()
                                : "; " + std::to_string(left_out) + (left_out == 1 ? " annotation" : " annotations") + " left out";
    std::snprintf(buf, sizeof buf, "  region of interest: %s (%.3f mm2%s)\n", valid_utf8(o.roi_source).c_str(),
                  r.roi_px2 * r.mpp_slide * r.mpp_slide / 1e6, without.c_str());
    out += buf;
  }
  if (!r.not_evaluable_reason.empty()) out += "  not evaluable: " + r.not_evaluable_reason + "\n";
  if (r.score != scoring::SlideScore::NotEvaluable) {
    const DecisiveMargin m = decisive_margin(r, o);
    if (o.biopsy_rule())  // a count of cells in the best cluster, not a per cent
      std::snprintf(buf, sizeof buf, "  decisive: largest cohesive cluster %.0f cells vs %.0f needed\n", m.percent,
                    m.threshold);
    else
      std::snprintf(buf, sizeof buf, "  decisive: %s %.1f%% vs threshold %.0f%% (95%% CI %.1f-%.1f)%s\n",
                    m.metric.c_str(), m.percent, m.threshold, m.ci95[0], m.ci95[1],
                    m.borderline ? "  BORDERLINE: review" : "");
    out += buf;
  }
  if (r.score == scoring::SlideScore::TwoPlus) out += "  equivocal: reflex ISH testing recommended\n";
  for (const std::string& w : warnings(r, o)) out += "  warning: " + w + "\n";
  std::snprintf(buf, sizeof buf,
                "  tumour cells: %lld   0: %.1f%%  1+: %.1f%%  2+: %.1f%%  3+: %.1f%%\n"
                "  complete membrane: %.1f%%   complete and intense: %.1f%%\n"
                "  tiles: %lld with tissue of %lld, %lld failed   %.2f um/px   %.1f s on %d threads\n",
                static_cast<long long>(r.counts.total()), r.percent.p0, r.percent.p1, r.percent.p2, r.percent.p3,
                r.percent.complete(), r.percent.complete_intense(), static_cast<long long>(r.tiles_tissue),
                static_cast<long long>(r.tiles_total), static_cast<long long>(r.tiles_failed), r.mpp_analysis,
                r.elapsed_s, r.threads);
  out += buf;
  return out;
}

}  // namespace ihc::engine
