// Fitting class thresholds to labelled slides (label_fit.hpp) on hand-made cell measurements
// whose right thresholds are known.
#include <catch2/catch.hpp>

#include "ihc/engine/label_fit.hpp"

using namespace ihc;

namespace {
// 100 cells: `stained` of them with the given completeness and intensity, the rest unstained.
engine::LabelledSlide slide(const char* name, int truth, int stained, float completeness, float intensity) {
  engine::LabelledSlide s;
  s.slide = name;
  s.truth = truth;
  for (int i = 0; i < 100; ++i)
    s.cells.push_back(i < stained ? engine::MeasuredCell{completeness, intensity, false, false}
                                  : engine::MeasuredCell{0.0f, 0.0f, false, false});
  return s;
}
}  // namespace

TEST_CASE("thresholds fitted to labelled slides reproduce the labels, and leave-one-out predicts each",
          "[engine][calibrate]") {
  // Intense membranes here read 0.6-0.65 and moderate ones 0.14-0.15: the defaults (0.70, 0.20) call the
  // 3+ slides 2+ and the 2+ slides 1+; the grid holds thresholds that separate them.
  const std::vector<engine::LabelledSlide> slides{
      slide("a0", 0, 0, 0, 0),        slide("b0", 0, 2, 0.3f, 0.1f),  slide("a1", 1, 40, 0.3f, 0.1f),
      slide("b1", 1, 30, 0.4f, 0.1f), slide("a2", 2, 40, 0.95f, 0.14f), slide("b2", 2, 30, 0.9f, 0.15f),
      slide("a3", 3, 40, 0.95f, 0.6f), slide("b3", 3, 30, 0.9f, 0.65f)};
  const scoring::CellParams defaults;
  const auto g = scoring::Guideline::AscoCap2018;
  int exact_defaults = 0;
  for (const auto& s : slides) exact_defaults += engine::score_with(s, defaults, g, {}) == s.truth ? 1 : 0;
  CHECK(exact_defaults == 4);
  const auto fit = engine::fit_thresholds(slides, {}, defaults, g, {});
  CHECK(fit.exact == 8);
  CHECK(fit.distance == 0);
  CHECK(fit.params.moderate_od <= 0.14);
  CHECK(fit.params.intense_od <= 0.6);
  CHECK(fit.params.intense_od > 0.15);
  const auto loo = engine::leave_one_out(slides, defaults, g, {});
  REQUIRE(loo.size() == slides.size());
  for (std::size_t k = 0; k < slides.size(); ++k) CHECK(loo[k] == slides[k].truth);
  // Fitted on one slide of each class only, the held-out one is still predicted.
  const auto part = engine::fit_thresholds(slides, {0, 2, 4, 6}, defaults, g, {});
  CHECK(part.exact == 4);
  CHECK(engine::score_with(slides[7], part.params, g, {}) == 3);
}
