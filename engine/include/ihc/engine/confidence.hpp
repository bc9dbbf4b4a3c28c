#pragma once
// How close a slide's score sits to the guideline threshold that decided it, with a 95 %
// interval (the union of a binomial interval over the cells counted and a bootstrap over tiles),
// so a borderline case is flagged for a second look.
#include <array>
#include <string>

#include "ihc/engine/pipeline.hpp"

namespace ihc::engine {

struct DecisiveMargin {
  // "complete_intense", "complete" or "any_membrane" (per cent of tumour cells); for a gastric
  // biopsy "cluster_cells" (cells in the largest cohesive cluster; percent and threshold are counts)
  std::string metric;
  double percent = 0;          // the slide's value of that metric
  double threshold = 0;        // the threshold of the guideline rule that placed the score
  std::array<double, 2> ci95{};  // Wilson over cells, widened by a bootstrap over tiles (fixed seed)
  bool borderline = false;     // the threshold lies inside the interval
};

// Valid when the slide was scored (not not-evaluable). `resamples` bootstrap draws of tiles.
DecisiveMargin decisive_margin(const SlideResult& result, const ScoreOptions& options, int resamples = 1000);

}  // namespace ihc::engine
