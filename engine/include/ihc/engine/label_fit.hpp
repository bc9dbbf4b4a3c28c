#pragma once
// Fitting the membrane class thresholds to slides of known score (pathologists' labels), with a
// leave-one-out check: `ihcscore calibrate --labels`. Each slide is scored once and its counted
// cells' measurements kept; the class thresholds that act on them (moderate_od, intense_od,
// complete_fraction, partial_min_fraction) are then searched on a fixed grid, re-classifying the
// cells for each candidate. The fit maximises exact agreement, then minimises the summed class
// distance, then stays closest to the thresholds given. Pure: no I/O.
#include <string>
#include <vector>

#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/guideline.hpp"

namespace ihc::engine {

struct MeasuredCell {
  float completeness = 0, intensity_od = 0;
  bool lateral = false;
  bool forced_negative = false;  // scored 0 whatever the thresholds (cytoplasmic pattern, pigment)
};

struct LabelledSlide {
  std::string slide;
  int truth = 0;  // 0..3
  std::vector<MeasuredCell> cells;
};

struct ThresholdFit {
  scoring::CellParams params;  // the given parameters with the four fitted thresholds
  int exact = 0;               // slides scored as labelled, of those fitted on
  int distance = 0;            // summed |engine - truth| (a not-evaluable slide counts 4)
};

// The score (0..3, or -1 when no cell is counted) of `slide` under `params` and the guideline.
int score_with(const LabelledSlide& slide, const scoring::CellParams& params, scoring::Guideline g,
               const scoring::RuleParams& rules);

// Fits on the slides whose index is in `use` (all when empty), starting from `start` (the cell
// parameters as the guideline uses them: ScoreOptions::cell_params).
ThresholdFit fit_thresholds(const std::vector<LabelledSlide>& slides, const std::vector<std::size_t>& use,
                            const scoring::CellParams& start, scoring::Guideline g, const scoring::RuleParams& rules);

// For each slide, its score under thresholds fitted on all the other slides.
std::vector<int> leave_one_out(const std::vector<LabelledSlide>& slides, const scoring::CellParams& start,
                               scoring::Guideline g, const scoring::RuleParams& rules);

}  // namespace ihc::engine
