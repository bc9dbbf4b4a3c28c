#include "ihc/engine/config.hpp"
#include "ihc/engine/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ihc/engine/errors.hpp"

namespace ihc::engine {
namespace {

using nlohmann::json;

// The numeric cell parameters by name: one table serves reading and writing.
template <typename F>
void for_each_cell_param(scoring::CellParams& c, F&& f) {
  f("nucleus_radius_um", c.nucleus_radius_um);
  f("nucleus_min_od", c.nucleus_min_od);
  f("nucleus_min_contrast_od", c.nucleus_min_contrast_od);
  f("counterstain_ref_contrast_od", c.counterstain_ref_contrast_od);
  f("min_floor_scale", c.min_floor_scale);
  f("min_nucleus_area_um2", c.min_nucleus_area_um2);
  f("max_nucleus_area_um2", c.max_nucleus_area_um2);
  f("max_nucleus_elongation", c.max_nucleus_elongation);
  f("max_cell_radius_um", c.max_cell_radius_um);
  f("faint_od", c.faint_od);
  f("moderate_od", c.moderate_od);
  f("intense_od", c.intense_od);
  f("min_membrane_contrast_od", c.min_membrane_contrast_od);
  f("ridge_um", c.ridge_um);
  f("membrane_ref_um", c.membrane_ref_um);
  f("max_membrane_width_um", c.max_membrane_width_um);
  f("min_membrane_peak_od", c.min_membrane_peak_od);
  f("min_arc_degrees", c.min_arc_degrees);
  f("complete_fraction", c.complete_fraction);
  f("partial_min_fraction", c.partial_min_fraction);
  f("intense_incomplete_fraction", c.intense_incomplete_fraction);
  f("neighbourhood_um", c.neighbourhood_um);
  f("cytoplasm_gap_um", c.cytoplasm_gap_um);
  f("cytoplasmic_tile_ratio", c.cytoplasmic_tile_ratio);
  f("cytoplasmic_tile_min_od", c.cytoplasmic_tile_min_od);
  f("cytoplasmic_cell_ratio", c.cytoplasmic_cell_ratio);
  f("cytoplasmic_min_od", c.cytoplasmic_min_od);
  f("pigment_h_ratio", c.pigment_h_ratio);
  f("nuclear_ridge_h_ratio", c.nuclear_ridge_h_ratio);
  f("ridge_h_excess_ratio", c.ridge_h_excess_ratio);
  f("pigment_ring_um", c.pigment_ring_um);
  f("pigment_cell_fraction", c.pigment_cell_fraction);
}

// The quality parameters (folds, out of focus; quality.hpp) by name, numbers and switches.
template <typename F, typename G>
void for_each_quality_param(scoring::QualityParams& q, F&& number_param, G&& switch_param) {
  switch_param("folds", q.folds);
  switch_param("focus", q.focus);
  switch_param("fold_grow_edge", q.fold_grow_edge);
  switch_param("focus_slide_reference", q.focus_slide_reference);
  number_param("block_um", q.block_um);
  number_param("tissue_od", q.tissue_od);
  number_param("min_tissue_fraction", q.min_tissue_fraction);
  number_param("fold_floor_percentile", q.fold_floor_percentile);
  number_param("fold_ratio", q.fold_ratio);
  number_param("fold_min_h_od", q.fold_min_h_od);
  number_param("fold_dab_epsilon_od", q.fold_dab_epsilon_od);
  number_param("fold_max_imbalance", q.fold_max_imbalance);
  number_param("focus_relative_sharpness", q.focus_relative_sharpness);
  number_param("focus_min_contrast_od", q.focus_min_contrast_od);
}

// The range each parameter may take: a value outside is a mistake (a huge cytoplasm gap crashed
// cell detection, a huge ridge or ray count ran for minutes, a complete_fraction of 5 meant
// nothing), refused when the file is read. One table; docs/algorithm.md (Thresholds) lists it.
struct Range {
  const char* key;
  double lo, hi;
};
constexpr Range kRanges[] = {
    // cells
    {"nucleus_radius_um", 1, 20}, {"nucleus_min_od", 0, 3}, {"nucleus_min_contrast_od", 0, 3}, {"counterstain_ref_contrast_od", 0, 3}, {"min_floor_scale", 0, 1},
    {"min_nucleus_area_um2", 0, 1000}, {"max_nucleus_area_um2", 1, 5000}, {"max_nucleus_elongation", 1, 20},
    {"max_cell_radius_um", 2, 50}, {"faint_od", 0, 5}, {"moderate_od", 0, 5}, {"intense_od", 0, 5},
    {"min_membrane_contrast_od", 0, 5}, {"ridge_um", 0.5, 20}, {"membrane_ref_um", 0.1, 10},
    {"max_membrane_width_um", 0.5, 20}, {"min_membrane_peak_od", 0, 5}, {"min_arc_degrees", 0, 360},
    {"complete_fraction", 0, 1}, {"partial_min_fraction", 0, 1}, {"intense_incomplete_fraction", 0, 1},
    {"neighbourhood_um", 1, 200}, {"cytoplasm_gap_um", 0, 20}, {"cytoplasmic_tile_ratio", 0, 10},
    {"cytoplasmic_tile_min_od", 0, 5}, {"cytoplasmic_cell_ratio", 0, 10}, {"cytoplasmic_min_od", 0, 5},
    {"pigment_h_ratio", 0, 100}, {"nuclear_ridge_h_ratio", 0, 100}, {"ridge_h_excess_ratio", 0, 100}, {"pigment_ring_um", 0, 20}, {"pigment_cell_fraction", 0, 1},
    {"min_neighbours", 0, 100}, {"cytoplasmic_min_cells", 0, 1e6}, {"pigment_min_rays", 0, 360}, {"rays", 8, 360},
    // rules, stains
    {"noise_floor_percent", 0, 100}, {"counterstain_residual_weight", 0, 20},
    // quality
    {"block_um", 4, 1000}, {"tissue_od", 0, 5}, {"min_tissue_fraction", 0, 1}, {"fold_floor_percentile", 0, 100},
    {"fold_ratio", 1, 20}, {"fold_min_h_od", 0, 5}, {"fold_dab_epsilon_od", 0, 1}, {"fold_max_imbalance", 1, 100},
    {"focus_relative_sharpness", 0, 1}, {"focus_min_contrast_od", 0, 5}, {"fold_min_blocks", 1, 10000},
    {"focus_min_blocks", 1, 10000}, {"focus_slide_min_blocks", 1, 10000},
};

double number(const json& v, const std::string& name, const std::string& key) {
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw EngineError(ErrorKind::input, name + ": \"" + key + "\" must be a number");
  const double x = v.get<double>();
  for (const Range& r : kRanges)
    if (key == r.key && !(x >= r.lo && x <= r.hi)) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "\"%s\" must be between %g and %g, got %g", r.key, r.lo, r.hi, x);
      throw EngineError(ErrorKind::input, name + ": " + buf);  // like every other fault of the file: exit 3
    }
  return x;
}

}  // namespace

void apply_config(const json& config, const std::string& name, ScoreOptions& o) {
  if (!config.is_object()) throw EngineError(ErrorKind::input, name + ": a configuration must be a JSON object");
  for (const auto& [key, value] : config.items()) {
    if (key == "cells") {
      if (!value.is_object()) throw EngineError(ErrorKind::input, name + ": \"cells\" must be an object");
      for (const auto& item : value.items()) {
        // Not a structured binding: clang before 16 cannot capture one in the lambda below.
        const std::string& k = item.key();
        const json& v = item.value();
        bool known = false;
        for_each_cell_param(o.cells, [&](const char* n, double& field) {
          if (k == n) {
            field = number(v, name, k);
            known = true;
          }
        });
        if (k == "min_neighbours") {
          o.cells.min_neighbours = static_cast<int>(std::min(number(v, name, k), 1e6));  // no int overflow
          known = true;
        } else if (k == "cytoplasmic_min_cells") {
          o.cells.cytoplasmic_min_cells = static_cast<int>(std::min(number(v, name, k), 1e6));
          known = true;
        } else if (k == "pigment_min_rays") {
          o.cells.pigment_min_rays = static_cast<int>(std::min(number(v, name, k), 1e6));
          known = true;
        } else if (k == "remove_dab_from_hematoxylin" || k == "nuclear_ridge_follows_leak") {
          if (!v.is_boolean()) throw EngineError(ErrorKind::input, name + ": \"" + k + "\" must be true or false");
          (k == "remove_dab_from_hematoxylin" ? o.cells.remove_dab_from_hematoxylin : o.cells.nuclear_ridge_follows_leak) =
              v.get<bool>();
          known = true;
        } else if (k == "rays") {
          o.cells.rays = std::max(8, static_cast<int>(std::min(number(v, name, k), 1e6)));
          known = true;
        }
        if (!known) throw EngineError(ErrorKind::input, name + ": unknown cell parameter \"" + k + "\"");
      }
      if (!(o.cells.faint_od <= o.cells.moderate_od && o.cells.moderate_od <= o.cells.intense_od))
        throw EngineError(ErrorKind::input, name + ": thresholds must satisfy faint_od <= moderate_od <= intense_od");
    } else if (key == "rules") {
      if (!value.is_object()) throw EngineError(ErrorKind::input, name + ": \"rules\" must be an object");
      for (const auto& [k, v] : value.items()) {
        if (k != "noise_floor_percent") throw EngineError(ErrorKind::input, name + ": unknown rule parameter \"" + k + "\"");
        o.rules.noise_floor_percent = number(v, name, k);
      }
    } else if (key == "quality") {
      if (!value.is_object()) throw EngineError(ErrorKind::input, name + ": \"quality\" must be an object");
      for (const auto& item : value.items()) {
        const std::string& k = item.key();
        const json& v = item.value();
        bool known = false;
        for_each_quality_param(
            o.quality,
            [&](const char* n, double& field) {
              if (k != n) return;
              field = number(v, name, k);
              known = true;
            },
            [&](const char* n, bool& field) {
              if (k != n) return;
              if (!v.is_boolean()) throw EngineError(ErrorKind::input, name + ": \"" + k + "\" must be true or false");
              field = v.get<bool>();
              known = true;
            });
        if (k == "fold_min_blocks" || k == "focus_min_blocks" || k == "focus_slide_min_blocks") {
          int& field = k == "fold_min_blocks"    ? o.quality.fold_min_blocks
                       : k == "focus_min_blocks" ? o.quality.focus_min_blocks
                                                 : o.quality.focus_slide_min_blocks;
          field = std::max(1, static_cast<int>(std::min(number(v, name, k), 1e6)));
          known = true;
        }
        if (!known) throw EngineError(ErrorKind::input, name + ": unknown quality parameter \"" + k + "\"");
      }
    } else if (key == "counterstain_residual_weight") {
      o.counterstain_residual_weight = number(value, name, key);
    } else if (key == "comment" || key == "calibration") {
      // Free text and provenance written by people or by `calibrate`: kept out of the scoring.
    } else {
      throw EngineError(ErrorKind::input, name + ": unknown key \"" + key + "\"");
    }
  }
}

void apply_config_file(const std::filesystem::path& path, ScoreOptions& o) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw EngineError(ErrorKind::input, path.string() + ": cannot read the configuration file");
  std::stringstream ss;
  ss << f.rdbuf();
  json config;
  try {
    config = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw EngineError(ErrorKind::input, path.string() + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {  // e.g. out_of_range 406: a number beyond a double (1e400)
    throw EngineError(ErrorKind::input, path.string() + ": not valid JSON (" + e.what() + ")");
  }
  apply_config(config, path.string(), o);
  o.config_source = path.string();
  o.config_hash = content_hash(ss.str());
}

json config_json(const ScoreOptions& options) {
  ScoreOptions o = options;
  json cells = json::object();
  for_each_cell_param(o.cells, [&](const char* n, double& field) { cells[n] = field; });
  cells["min_neighbours"] = o.cells.min_neighbours;
  cells["rays"] = o.cells.rays;
  cells["cytoplasmic_min_cells"] = o.cells.cytoplasmic_min_cells;
  cells["pigment_min_rays"] = o.cells.pigment_min_rays;
  cells["remove_dab_from_hematoxylin"] = o.cells.remove_dab_from_hematoxylin;
  cells["nuclear_ridge_follows_leak"] = o.cells.nuclear_ridge_follows_leak;
  json quality = json::object();
  for_each_quality_param(
      o.quality, [&](const char* n, double& field) { quality[n] = field; },
      [&](const char* n, bool& field) { quality[n] = field; });
  quality["fold_min_blocks"] = o.quality.fold_min_blocks;
  quality["focus_min_blocks"] = o.quality.focus_min_blocks;
  quality["focus_slide_min_blocks"] = o.quality.focus_slide_min_blocks;
  return {{"cells", cells},
          {"rules", {{"noise_floor_percent", o.rules.noise_floor_percent}}},
          {"quality", quality},
          {"counterstain_residual_weight", o.counterstain_residual_weight}};
}

}  // namespace ihc::engine
