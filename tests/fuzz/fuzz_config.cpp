// libFuzzer harness for scoring configuration files (engine/src/config.cpp, apply_config), then
// what the engine does with an accepted configuration: one small synthetic field deconvolved,
// its cells detected and its quality judged with those parameters. EngineError is the parser's
// documented refusal (input: malformed; usage: a value outside its documented range); a crash,
// a hang or a huge allocation with an accepted configuration is a finding (the ranges exist to
// prevent exactly that).
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "ihc/engine/config.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/scoring/cells.hpp"
#include "ihc/scoring/quality.hpp"
#include "ihc/scoring/stains.hpp"

namespace {
// 160 x 160 px at 0.5 um/px: blue nuclei in brown-ringed cells on pale stroma.
const cv::Mat& field() {
  static const cv::Mat rgb = [] {
    cv::Mat m(160, 160, CV_8UC3, cv::Scalar(235, 225, 230));
    for (int y = 20; y < 160; y += 36)
      for (int x = 20; x < 160; x += 36) {
        cv::circle(m, {x, y}, 15, cv::Scalar(150, 95, 60), 3);   // DAB membrane (RGB)
        cv::circle(m, {x, y}, 6, cv::Scalar(70, 80, 150), -1);   // haematoxylin nucleus
      }
    return m;
  }();
  return rgb;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json config =
      nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size, nullptr,
                            /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  ihc::engine::ScoreOptions options;
  try {
    ihc::engine::apply_config(config, "fuzz.json", options);
  } catch (const ihc::engine::EngineError& e) {
    if (e.kind() != ihc::engine::ErrorKind::input && e.kind() != ihc::engine::ErrorKind::usage) std::abort();
    return 0;
  }
  constexpr double kMpp = 0.5;
  const cv::Mat& rgb = field();
  const ihc::scoring::HematoxylinDab dec =
      ihc::scoring::deconvolve_for_cells(rgb, options.stains, options.counterstain_residual_weight);
  const cv::Rect all(0, 0, rgb.cols, rgb.rows);
  const auto cells =
      ihc::scoring::detect_cells_smoothed(dec.hematoxylin, dec.dab_smooth, kMpp, all, options.cell_params(), all);
  const auto quality = ihc::scoring::assess_quality(dec.hematoxylin, dec.dab, kMpp, options.quality, all);
  volatile std::size_t sink = cells.size() + quality.flags.size();
  (void)sink;
  return 0;
}
