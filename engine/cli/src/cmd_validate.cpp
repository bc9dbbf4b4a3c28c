// `ihcscore validate --truth TRUTH.csv --results SUMMARY.csv`: agreement of the engine's scores
// with a reference scoring (kappas, confusion matrix, per-class figures, Bland-Altman on the per
// cent of complete membranes), with optional JSON and PNG plots. Statistics in validation.hpp.
//
// Exit codes: 2 bad command line; 3 an input CSV is missing, unreadable or malformed (the message
// names file and line), lacks a required column, or no slide matches between the two; 4 an output
// cannot be written or exists without --force.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/outputs.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/engine/text.hpp"

namespace ihc::cli {
namespace {
namespace fs = std::filesystem;

struct ValidateArgs {
  std::string truth, results, json, plots;
  int resamples = kDefaultBootstrapResamples;
  std::uint64_t seed = kDefaultBootstrapSeed;
  bool force = false;
};

std::string fmt(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string fmt(const std::optional<double>& v, int digits) { return v ? fmt(*v, digits) : "n/a"; }
std::string signed_fmt(double v, int digits) { return (v >= 0 ? "+" : "") + fmt(v, digits); }

nlohmann::json number_or_null(double v, int digits) {
  return std::isfinite(v) ? nlohmann::json(round_to(v, digits)) : nlohmann::json(nullptr);
}
nlohmann::json number_or_null(const std::optional<double>& v, int digits) {
  return v ? number_or_null(*v, digits) : nlohmann::json(nullptr);
}

// ---------------------------------------------------------------- plots (OpenCV drawing)
const cv::Scalar kBlack(0, 0, 0), kGrey(150, 150, 150), kLightGrey(225, 225, 225), kWhite(255, 255, 255);
const cv::Scalar kBlue(180, 90, 20), kRed(40, 40, 200);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

enum class Align { Left, Centre, Right };
void text(cv::Mat& img, const std::string& s, cv::Point at, double scale, const cv::Scalar& colour, int thickness = 1,
          Align align = Align::Left) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(s, kFont, scale, thickness, &baseline);
  if (align == Align::Centre) at.x -= size.width / 2;
  if (align == Align::Right) at.x -= size.width;
  cv::putText(img, s, at, kFont, scale, colour, thickness, cv::LINE_AA);
}

// Text turned 90 degrees counter-clockwise, centred on `centre` (for y-axis titles).
void vertical_text(cv::Mat& img, const std::string& s, cv::Point centre, double scale, int thickness = 1) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(s, kFont, scale, thickness, &baseline);
  cv::Mat strip(size.height + baseline + 6, size.width + 6, CV_8UC3, kWhite);
  cv::putText(strip, s, {3, size.height + 3}, kFont, scale, kBlack, thickness, cv::LINE_AA);
  cv::Mat turned;
  cv::rotate(strip, turned, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Rect where(centre.x - turned.cols / 2, centre.y - turned.rows / 2, turned.cols, turned.rows);
  const cv::Rect inside = where & cv::Rect(0, 0, img.cols, img.rows);
  turned(cv::Rect(inside.x - where.x, inside.y - where.y, inside.width, inside.height)).copyTo(img(inside));
}

cv::Mat draw_confusion_matrix(const ScoreAgreement& a) {
  cv::Mat img(700, 760, CV_8UC3, kWhite);
  text(img, "Confusion matrix: engine vs reference", {380, 42}, 0.9, kBlack, 2, Align::Centre);
  text(img, "n = " + std::to_string(a.n) + "   accuracy " + fmt(a.accuracy, 3) + "   quadratic kappa " +
                fmt(a.kappa_quadratic, 3),
       {380, 78}, 0.6, kBlack, 1, Align::Centre);
  const int x0 = 200, y0 = 120, cell = 115;
  for (int i = 0; i < 4; ++i) {
    std::int64_t row_total = 0;
    for (int j = 0; j < 4; ++j) row_total += a.matrix[i][j];
    for (int j = 0; j < 4; ++j) {
      const double frac = row_total ? static_cast<double>(a.matrix[i][j]) / static_cast<double>(row_total) : 0.0;
      // White (0) to dark blue (1), by share of the reference row.
      const cv::Scalar fill(255 - 75 * frac, 255 - 185 * frac, 255 - 225 * frac);
      const cv::Rect r(x0 + j * cell, y0 + i * cell, cell, cell);
      cv::rectangle(img, r, fill, cv::FILLED);
      cv::rectangle(img, r, kGrey, 1);
      const cv::Scalar ink = frac > 0.5 ? kWhite : kBlack;
      text(img, std::to_string(a.matrix[i][j]), {r.x + cell / 2, r.y + cell / 2 + 6}, 1.0, ink, 2, Align::Centre);
      if (row_total)
        text(img, fmt(100.0 * frac, 0) + "%", {r.x + cell / 2, r.y + cell / 2 + 34}, 0.5, ink, 1, Align::Centre);
    }
    text(img, kScoreLabels[i], {x0 - 20, y0 + i * cell + cell / 2 + 9}, 0.8, kBlack, 2, Align::Right);
  }
  for (int j = 0; j < 4; ++j)
    text(img, kScoreLabels[j], {x0 + j * cell + cell / 2, y0 + 4 * cell + 32}, 0.8, kBlack, 2, Align::Centre);
  cv::rectangle(img, cv::Rect(x0, y0, 4 * cell, 4 * cell), kBlack, 2);
  text(img, "Engine score", {x0 + 2 * cell, y0 + 4 * cell + 72}, 0.75, kBlack, 2, Align::Centre);
  vertical_text(img, "Reference (truth) score", {x0 - 90, y0 + 2 * cell}, 0.75, 2);
  return img;
}

double nice_step(double range) {
  const double raw = range / 6.0;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10.0 * p;
}

// Decimals that show every multiple of `step` exactly (step from nice_step: 1, 2, 2.5 or 5 x 10^k).
int tick_digits(double step) {
  for (int d = 0; d < 6; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::abs(scaled - std::round(scaled)) < 1e-9 * std::max(1.0, scaled)) return d;
  }
  return 6;
}

void dashed_line(cv::Mat& img, cv::Point a, cv::Point b, const cv::Scalar& colour, int thickness) {
  const double len = std::hypot(b.x - a.x, b.y - a.y);
  const int dashes = std::max(1, static_cast<int>(len / 14.0));
  for (int k = 0; k < dashes; k += 2) {
    const auto at = [&](double t) {
      return cv::Point(static_cast<int>(std::lround(a.x + (b.x - a.x) * t)), static_cast<int>(std::lround(a.y + (b.y - a.y) * t)));
    };
    cv::line(img, at(static_cast<double>(k) / dashes), at(std::min(1.0, static_cast<double>(k + 1) / dashes)), colour,
             thickness, cv::LINE_AA);
  }
}

cv::Mat draw_bland_altman(const BlandAltman& b, const std::vector<double>& truth, const std::vector<double>& engine) {
  cv::Mat img(680, 960, CV_8UC3, kWhite);
  text(img, "Bland-Altman: per cent of cells with complete membrane staining", {480, 40}, 0.8, kBlack, 2,
       Align::Centre);
  text(img, "n = " + std::to_string(b.n) + "   bias " + signed_fmt(b.bias, 2) + "   95% limits of agreement " +
                fmt(b.lower_limit, 2) + " to " + fmt(b.upper_limit, 2) + "   MAE " + fmt(b.mean_absolute_error, 2),
       {480, 74}, 0.55, kBlack, 1, Align::Centre);
  const int left = 120, right = 800, top = 100, bottom = 570;
  // x: mean of the two (0-100 %); y: engine - truth, symmetric about 0, covering points and limits.
  double y_extent = std::max({std::abs(b.lower_limit), std::abs(b.upper_limit), 1.0});
  for (std::size_t i = 0; i < truth.size(); ++i) y_extent = std::max(y_extent, std::abs(engine[i] - truth[i]));
  const double y_step = nice_step(2.0 * y_extent * 1.15);
  const double y_max = std::ceil(y_extent * 1.15 / y_step) * y_step;
  const auto px = [&](double x) { return left + static_cast<int>(std::lround((right - left) * x / 100.0)); };
  const auto py = [&](double y) {
    return bottom - static_cast<int>(std::lround((bottom - top) * (y + y_max) / (2.0 * y_max)));
  };
  for (int k = 0; k <= 10; ++k) {  // x grid every 10 %
    const double x = 10.0 * k;
    cv::line(img, {px(x), top}, {px(x), bottom}, kLightGrey, 1);
    cv::line(img, {px(x), bottom}, {px(x), bottom + 6}, kBlack, 1);
    text(img, fmt(x, 0), {px(x), bottom + 26}, 0.55, kBlack, 1, Align::Centre);
  }
  const int y_ticks = static_cast<int>(std::lround(y_max / y_step));
  for (int k = -y_ticks; k <= y_ticks; ++k) {
    const double y = k * y_step;
    cv::line(img, {left, py(y)}, {right, py(y)}, k == 0 ? kGrey : kLightGrey, 1);
    cv::line(img, {left - 6, py(y)}, {left, py(y)}, kBlack, 1);
    text(img, fmt(y, tick_digits(y_step)), {left - 10, py(y) + 6}, 0.55, kBlack, 1, Align::Right);
  }
  cv::rectangle(img, cv::Point(left, top), cv::Point(right, bottom), kBlack, 1);
  const auto clamp_y = [&](double y) { return std::clamp(y, -y_max, y_max); };
  cv::line(img, {left, py(clamp_y(b.bias))}, {right, py(clamp_y(b.bias))}, kBlue, 2, cv::LINE_AA);
  dashed_line(img, {left, py(clamp_y(b.upper_limit))}, {right, py(clamp_y(b.upper_limit))}, kRed, 2);
  dashed_line(img, {left, py(clamp_y(b.lower_limit))}, {right, py(clamp_y(b.lower_limit))}, kRed, 2);
  text(img, "bias " + signed_fmt(b.bias, 2), {right + 8, py(clamp_y(b.bias)) + 5}, 0.5, kBlue, 1);
  text(img, "+1.96 SD " + fmt(b.upper_limit, 2), {right + 8, py(clamp_y(b.upper_limit)) + 5}, 0.5, kRed, 1);
  text(img, "-1.96 SD " + fmt(b.lower_limit, 2), {right + 8, py(clamp_y(b.lower_limit)) + 5}, 0.5, kRed, 1);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const cv::Point p(px((truth[i] + engine[i]) / 2.0), py(engine[i] - truth[i]));
    cv::circle(img, p, 5, kBlack, 2, cv::LINE_AA);
  }
  text(img, "Mean of reference and engine (% of cells with complete staining)", {(left + right) / 2, bottom + 62}, 0.65,
       kBlack, 1, Align::Centre);
  vertical_text(img, "Engine - reference (percentage points)", {left - 75, (top + bottom) / 2}, 0.65, 1);
  return img;
}

// ---------------------------------------------------------------- report
std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

int run_validate(const ValidateArgs& args) {
  if (args.resamples < 1) throw EngineError(ErrorKind::usage, "--resamples: must be at least 1");
  const fs::path plots_dir(args.plots);
  const fs::path cm_png = plots_dir / "confusion_matrix.png", ba_png = plots_dir / "bland_altman.png";
  check_distinct_outputs({{"--truth", args.truth}, {"--results", args.results}, {"--json", args.json},
                          {"--plots", args.plots.empty() ? std::string() : cm_png.string()},
                          {"--plots", args.plots.empty() ? std::string() : ba_png.string()}});
  if (!args.json.empty()) check_output_path(args.json, args.force);
  if (!args.plots.empty()) {
    std::error_code ec;
    fs::create_directories(plots_dir, ec);
    if (ec) throw EngineError(ErrorKind::output, args.plots + ": cannot create the folder: " + ec.message());
    check_output_path(cm_png, args.force);
    check_output_path(ba_png, args.force);
  }

  const CsvTable truth_csv = read_csv(args.truth);
  const CsvTable results_csv = read_csv(args.results);
  const auto truth = read_truth(truth_csv);
  const auto results = read_results(results_csv);
  const SlideMatching m = match_slides(truth, results);
  if (m.matched.empty())
    throw EngineError(ErrorKind::input, args.truth + ": no slide matches a scored slide in " + args.results +
                                       " (slides are matched by file stem, e.g. /data/S1.svs <-> S1)");

  std::vector<ScorePair> pairs;
  std::vector<double> pc_truth, pc_engine;
  for (const auto& s : m.matched) {
    pairs.push_back({s.truth, s.engine});
    if (s.percent_complete_truth && s.percent_complete_engine) {
      pc_truth.push_back(*s.percent_complete_truth);
      pc_engine.push_back(*s.percent_complete_engine);
    }
  }
  const ScoreAgreement a = score_agreement(pairs, args.resamples, args.seed);
  // The rules the results were scored with (batch summaries carry them).
  std::vector<std::string> guidelines;
  for (const auto& r : results)
    if (!r.guideline.empty() && std::find(guidelines.begin(), guidelines.end(), r.guideline) == guidelines.end())
      guidelines.push_back(r.guideline);
  const bool both_have_pc = truth_csv.column("percent_complete") && results_csv.column("percent_complete");
  std::optional<BlandAltman> ba;
  if (both_have_pc && !pc_truth.empty()) ba = bland_altman(pc_truth, pc_engine);

  // JSON
  nlohmann::json j;
  j["truth_file"] = args.truth;
  j["results_file"] = args.results;
  j["n"] = a.n;
  j["guideline"] = guidelines.empty() ? nlohmann::json(nullptr) : nlohmann::json(join(guidelines));
  j["accuracy"] = round_to(a.accuracy, 4);
  j["labels"] = {"0", "1+", "2+", "3+"};
  j["confusion_matrix_axes"] = "rows truth, columns engine";
  j["confusion_matrix"] = nlohmann::json::array();
  for (const auto& row : a.matrix) j["confusion_matrix"].push_back(row);
  j["kappa_quadratic"] = number_or_null(a.kappa_quadratic, 4);
  j["kappa_quadratic_ci95"] = a.kappa_quadratic_ci
                                  ? nlohmann::json{round_to(a.kappa_quadratic_ci->lower, 4),
                                                   round_to(a.kappa_quadratic_ci->upper, 4)}
                                  : nlohmann::json(nullptr);
  j["kappa_linear"] = number_or_null(a.kappa_linear, 4);
  j["kappa_unweighted"] = number_or_null(a.kappa_unweighted, 4);
  j["bootstrap"] = {{"resamples", a.bootstrap_resamples}, {"seed", a.bootstrap_seed}, {"method", "percentile"}};
  for (int i = 0; i < 4; ++i) {
    const auto& c = a.per_class[i];
    j["per_class"][kScoreLabels[i]] = {{"truth_n", c.truth_n},
                                       {"engine_n", c.engine_n},
                                       {"sensitivity", number_or_null(c.sensitivity, 4)},
                                       {"precision", number_or_null(c.precision, 4)}};
  }
  j["clinical_group_labels"] = {"0/1+", "2+", "3+"};
  j["clinical_confusion_matrix"] = nlohmann::json::array();
  for (const auto& row : a.clinical_matrix) j["clinical_confusion_matrix"].push_back(row);
  j["clinical_group_accuracy"] = round_to(a.clinical_group_accuracy, 4);
  if (ba) {
    j["percent_complete"] = {{"n", ba->n},
                             {"difference", "engine - truth"},
                             {"mean_absolute_error", round_to(ba->mean_absolute_error, 4)},
                             {"bias", round_to(ba->bias, 4)},
                             {"sd_difference", round_to(ba->sd_difference, 4)},
                             {"loa_lower", round_to(ba->lower_limit, 4)},
                             {"loa_upper", round_to(ba->upper_limit, 4)}};
  } else {
    j["percent_complete"] = nullptr;
  }
  j["slides"] = nlohmann::json::array();
  for (const auto& s : m.matched) {
    nlohmann::json e{{"slide", s.slide}, {"truth", kScoreLabels[s.truth]}, {"engine", kScoreLabels[s.engine]}};
    if (s.percent_complete_truth) e["percent_complete_truth"] = *s.percent_complete_truth;
    if (s.percent_complete_engine) e["percent_complete_engine"] = *s.percent_complete_engine;
    j["slides"].push_back(e);
  }
  j["excluded"] = nlohmann::json::array();
  for (const auto& e : m.excluded) j["excluded"].push_back({{"slide", e.slide}, {"reason", e.reason}});
  j["unmatched_truth"] = m.unmatched_truth;
  j["unmatched_results"] = m.unmatched_results;
  j["version"] = version_string();

  if (!args.json.empty()) write_file_atomically(args.json, json_text(j, 2) + "\n", args.force);
  bool wrote_ba = false;
  if (!args.plots.empty()) {
    write_png(cm_png, draw_confusion_matrix(a), args.force, ChannelOrder::bgr);
    if (ba) {
      write_png(ba_png, draw_bland_altman(*ba, pc_truth, pc_engine), args.force, ChannelOrder::bgr);
      wrote_ba = true;
    }
  }

  // Human summary
  std::ostringstream o;
  o << "validate: " << a.n << " slides matched (" << args.truth << " vs " << args.results << ")\n"
    << "  guideline:                 " << (guidelines.empty() ? std::string("not recorded") : join(guidelines)) << "\n"
    << "  accuracy:                  " << fmt(a.accuracy, 3) << "\n"
    << "  kappa, quadratic-weighted: " << fmt(a.kappa_quadratic, 3);
  if (a.kappa_quadratic_ci)
    o << "  (95% CI " << fmt(a.kappa_quadratic_ci->lower, 3) << " to " << fmt(a.kappa_quadratic_ci->upper, 3) << ", "
      << a.bootstrap_resamples << " bootstrap resamples, seed " << a.bootstrap_seed << ")";
  o << "\n"
    << "  kappa, linear-weighted:    " << fmt(a.kappa_linear, 3) << "\n"
    << "  kappa, unweighted:         " << fmt(a.kappa_unweighted, 3) << "\n"
    << "  clinical groups (0/1+, 2+, 3+) accuracy: " << fmt(a.clinical_group_accuracy, 3) << "\n"
    << "  confusion matrix (rows truth, columns engine):\n"
    << "           0    1+    2+    3+\n";
  for (int i = 0; i < 4; ++i) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "    %-3s %5lld %5lld %5lld %5lld\n", kScoreLabels[i],
                  static_cast<long long>(a.matrix[i][0]), static_cast<long long>(a.matrix[i][1]),
                  static_cast<long long>(a.matrix[i][2]), static_cast<long long>(a.matrix[i][3]));
    o << buf;
  }
  o << "  per class     sensitivity  precision\n";
  for (int i = 0; i < 4; ++i) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "    %-3s         %-11s  %s\n", kScoreLabels[i],
                  fmt(a.per_class[i].sensitivity, 3).c_str(), fmt(a.per_class[i].precision, 3).c_str());
    o << buf;
  }
  if (ba)
    o << "  percent_complete (n=" << ba->n << ", engine - truth): MAE " << fmt(ba->mean_absolute_error, 2) << ", bias "
      << signed_fmt(ba->bias, 2) << ", 95% limits of agreement " << fmt(ba->lower_limit, 2) << " to "
      << fmt(ba->upper_limit, 2) << "\n";
  else if (both_have_pc)
    o << "  percent_complete: no matched slide has a value in both files\n";
  else
    o << "  percent_complete: not in both files, no Bland-Altman analysis\n";
  if (!m.excluded.empty()) {
    std::vector<std::string> ex;
    for (const auto& e : m.excluded) ex.push_back(e.slide + " (" + e.reason + ")");
    o << "  excluded (" << ex.size() << "): " << join(ex) << "\n";
  }
  if (!m.unmatched_truth.empty())
    o << "  in truth only (" << m.unmatched_truth.size() << "): " << join(m.unmatched_truth) << "\n";
  if (!m.unmatched_results.empty())
    o << "  in results only (" << m.unmatched_results.size() << "): " << join(m.unmatched_results) << "\n";
  if (!args.json.empty()) o << "  report: " << args.json << "\n";
  if (!args.plots.empty()) {
    o << "  plots: " << cm_png.string();
    if (wrote_ba) o << ", " << ba_png.string();
    else o << " (bland_altman.png not written: no percent_complete pairs)";
    o << "\n";
  }
  std::cout << o.str();
  return kExitOk;
}

}  // namespace

void add_validate_command(CLI::App& app, CommandRunner& run) {
  auto args = std::make_shared<ValidateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "validate", "Agreement of engine scores with a reference: kappas, confusion matrix, Bland-Altman");
  cmd->footer(
      "TRUTH.csv: slide,score[,percent_complete]. SUMMARY.csv: a batch summary with slide,status,score"
      "[,percent_complete]; rows whose status is not ok are excluded. Slides match by file stem. Exit codes: "
      "2 bad option; 3 input missing, malformed (file and line named) or no slide in common; 4 output not written.\n");
  cmd->add_option("--truth", args->truth, "Reference scores CSV: slide,score[,percent_complete]")->required();
  cmd->add_option("--results", args->results, "Engine batch summary CSV: slide,status,score[,percent_complete]")
      ->required();
  cmd->add_option("--json", args->json, "Write the statistics as JSON to this file");
  cmd->add_option("--plots", args->plots, "Write confusion_matrix.png and bland_altman.png into this folder");
  cmd->add_option("--resamples", args->resamples, "Bootstrap resamples for the kappa interval")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Bootstrap random seed (fixed, so results repeat)")->capture_default_str();
  cmd->add_flag("--force", args->force, "Replace output files that already exist");
  cmd->callback([args, &run] { run = [args]() -> int { return run_validate(*args); }; });
}

}  // namespace ihc::cli
