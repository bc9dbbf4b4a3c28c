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

double number(const json& v, const std::string& name, const std::string& key) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    throw EngineError(ErrorKind::input, name + ": \"" + key + "\" must be a non-negative number");
  return v.get<double>();
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
      if (!(o.quality.block_um >= 4 && o.quality.block_um <= 1000))
        throw EngineError(ErrorKind::input, name + ": \"block_um\" must be between 4 and 1000");
      if (o.quality.fold_floor_percentile > 100)
        throw EngineError(ErrorKind::input, name + ": \"fold_floor_percentile\" must be at most 100");
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
