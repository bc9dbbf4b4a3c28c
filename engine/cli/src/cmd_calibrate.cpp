// ihcscore calibrate CONTROL:CLASS ... --out CONFIG.json: fits the membrane intensity thresholds
// (moderate_od between 1+ and 2+, intense_od between 2+ and 3+) from control slides or images of
// known class (cell lines, or pathologist-scored regions), and writes a configuration that
// `score --config` uses. Each boundary is the DAB intensity that best separates the complete-
// membrane cells of the two classes (highest balanced accuracy); a boundary whose two classes
// were not both given keeps its current value.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>

#include "ihc/cli/options.hpp"
#include "ihc/cli/commands.hpp"
#include "ihc/engine/config.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/label_fit.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/engine/text.hpp"

namespace ihc::cli {
namespace {

struct Boundary {
  double threshold = 0;
  double balanced_accuracy = 0;
};

// Threshold between `low` and `high` values maximising (specificity + sensitivity) / 2.
Boundary separate(std::vector<float> low, std::vector<float> high) {
  std::sort(low.begin(), low.end());
  std::sort(high.begin(), high.end());
  std::vector<float> candidates = low;
  candidates.insert(candidates.end(), high.begin(), high.end());
  std::sort(candidates.begin(), candidates.end());
  Boundary best;
  for (std::size_t i = 0; i + 1 < candidates.size(); ++i) {
    const double t = 0.5 * (candidates[i] + candidates[i + 1]);
    const double spec = static_cast<double>(std::lower_bound(low.begin(), low.end(), static_cast<float>(t)) - low.begin()) /
                        static_cast<double>(low.size());
    const double sens = static_cast<double>(high.end() - std::lower_bound(high.begin(), high.end(), static_cast<float>(t))) /
                        static_cast<double>(high.size());
    const double ba = 0.5 * (spec + sens);
    if (ba > best.balanced_accuracy) best = {t, ba};
  }
  return best;
}

// calibrate --labels: each slide scored once with its cells kept, then the class thresholds
// fitted to the slide scores (label_fit.hpp), in sample and leave-one-out.
int calibrate_from_labels(const std::string& labels_file, const std::string& images, const ScoringSettings& cli,
                          ScoreOptions options, const std::string& out, bool force) {
  const std::vector<TruthRow> labels = read_truth(read_csv(labels_file));
  const std::filesystem::path folder =
      images.empty() ? std::filesystem::path(labels_file).parent_path() : std::filesystem::path(images);
  if (options.biopsy_rule())
    throw EngineError(ErrorKind::usage, "--labels fits per-cent rules: use --specimen resection");
  options.keep_cells = true;
  std::vector<LabelledSlide> slides;
  for (const TruthRow& label : labels) {
    const std::string path = (folder / label.file).string();
    const auto slide = open_for_scoring(path, cli);
    ScoreOptions o = options;
    apply_stains_and_warn(*slide, cli, o);
    SlideResult result;
    try {
      result = score_slide(*slide, o);
    } catch (const std::invalid_argument& e) {
      throw EngineError(ErrorKind::usage, path + ": " + e.what());
    }
    LabelledSlide s;
    s.slide = label.slide;
    s.truth = label.score;
    for (const auto& t : result.tiles)
      for (const auto& c : t.cells)
        if (!c.excluded) s.cells.push_back({c.completeness, c.intensity_od, c.lateral, c.cytoplasmic || c.pigment});
    std::fprintf(stderr, "calibrate: %s (%s): %zu cells\n", s.slide.c_str(), kScoreLabels[static_cast<std::size_t>(s.truth)],
                 s.cells.size());
    slides.push_back(std::move(s));
  }
  if (slides.size() < 3) throw EngineError(ErrorKind::input, labels_file + ": at least 3 labelled slides are needed");
  const scoring::CellParams defaults = options.cell_params();
  const ThresholdFit fit = fit_thresholds(slides, {}, defaults, options.guideline, options.rules);
  const std::vector<int> loo = leave_one_out(slides, defaults, options.guideline, options.rules);
  const scoring::CellParams& fitted = fit.params;
  std::vector<ScorePair> in_pairs, loo_pairs;
  nlohmann::json per_slide = nlohmann::json::array();
  std::printf("%-40s %-5s %-9s %-9s %s\n", "slide", "label", "defaults", "fitted", "leave-one-out");
  const auto label = [](int s) { return s < 0 ? std::string("n/e") : std::string(kScoreLabels[static_cast<std::size_t>(s)]); };
  int loo_exact = 0;
  for (std::size_t k = 0; k < slides.size(); ++k) {
    const int d = score_with(slides[k], defaults, options.guideline, options.rules);
    const int f = score_with(slides[k], fitted, options.guideline, options.rules);
    std::printf("%-40s %-5s %-9s %-9s %s\n", slides[k].slide.substr(0, 40).c_str(), label(slides[k].truth).c_str(),
                label(d).c_str(), label(f).c_str(), label(loo[k]).c_str());
    in_pairs.push_back({slides[k].truth, std::max(0, f)});
    loo_pairs.push_back({slides[k].truth, std::max(0, loo[k])});
    loo_exact += loo[k] == slides[k].truth ? 1 : 0;
    per_slide.push_back({{"slide", slides[k].slide}, {"truth", label(slides[k].truth)}, {"defaults", label(d)},
                         {"fitted", label(f)}, {"leave_one_out", label(loo[k])}});
  }
  const double kappa_in = cohen_kappa(confusion_matrix(in_pairs), KappaWeighting::Quadratic);
  const double kappa_loo = cohen_kappa(confusion_matrix(loo_pairs), KappaWeighting::Quadratic);
  std::printf("in sample: %d/%zu exact, quadratic kappa %.3f\nleave-one-out: %d/%zu exact, quadratic kappa %.3f\n",
              fit.exact, slides.size(), kappa_in, loo_exact, slides.size(), kappa_loo);
  std::printf("fitted: moderate_od %.2f, intense_od %.2f, complete_fraction %.2f, partial_min_fraction %.2f\n",
              fitted.moderate_od, fitted.intense_od, fitted.complete_fraction, fitted.partial_min_fraction);
  options.cells.moderate_od = fitted.moderate_od;
  options.cells.intense_od = fitted.intense_od;
  options.cells.complete_fraction = fitted.complete_fraction;
  options.cells.partial_min_fraction = fitted.partial_min_fraction;
  nlohmann::json config = config_json(options);
  config["calibration"] = {{"labels", labels_file},
                           {"guideline", std::string(scoring::to_string(options.guideline))},
                           {"in_sample", {{"exact", fit.exact}, {"n", slides.size()}, {"kappa_quadratic", round_to(kappa_in, 4)}}},
                           {"leave_one_out", {{"exact", loo_exact}, {"n", slides.size()}, {"kappa_quadratic", round_to(kappa_loo, 4)}}},
                           {"slides", per_slide},
                           {"version", version_string()}};
  write_file_atomically(out, json_text(config, 2) + "\n", force);
  std::printf("config: %s\n", out.c_str());
  return kExitOk;
}

}  // namespace

void add_calibrate_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::vector<std::string> controls;
    std::string labels;  // slides of known score (calibrate --labels)
    std::string images;  // where the labelled slides are (default: the labels file's folder)
    ScoringSettings scoring;
    std::string out;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Fit the intensity thresholds from control slides of known class; write a --config file");
  cmd->add_option("CONTROLS", args->controls, "Controls as FILE:CLASS, CLASS one of 0, 1+, 2+, 3+");
  cmd->add_option("--labels", args->labels,
                  "Instead of controls: a CSV of slides with their score (columns file or slide, and ihc_score or "
                  "score); fits moderate_od, intense_od, complete_fraction and partial_min_fraction to the slide "
                  "scores under --guideline and reports the leave-one-out agreement");
  cmd->add_option("--images", args->images, "Folder of the slides named in --labels (default: the CSV's folder)");
  cmd->add_option("--out", args->out, "Configuration file to write (JSON)")->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->add_flag("--force", args->force, "Replace the output if it exists");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      ScoreOptions options = make_score_options(args->scoring);
      std::vector<std::pair<std::string, std::string>> files{{"--labels", args->labels},
                                                             {"--roi", args->scoring.roi},
                                                             {"--config", args->scoring.config}};
      for (const auto& c : args->controls) files.emplace_back("a control", c.substr(0, c.rfind(':')));
      files.emplace_back("--out", args->out);
      check_distinct_outputs(files);
      check_output_path(args->out, args->force);
      if (!args->labels.empty()) {
        if (!args->controls.empty()) throw EngineError(ErrorKind::usage, "give either CONTROLS or --labels, not both");
        return calibrate_from_labels(args->labels, args->images, args->scoring, options, args->out, args->force);
      }
      if (args->controls.empty()) throw EngineError(ErrorKind::usage, "give controls as FILE:CLASS, or --labels CSV");
      // Complete-membrane cells' intensities per declared class.
      std::array<std::vector<float>, 4> intensities;
      nlohmann::json used = nlohmann::json::array();
      for (const auto& item : args->controls) {
        const auto colon = item.rfind(':');
        const std::string file = colon == std::string::npos ? item : item.substr(0, colon);
        const std::string cls = colon == std::string::npos ? "" : item.substr(colon + 1);
        const std::array<std::string, 4> names{"0", "1+", "2+", "3+"};
        const auto it = std::find(names.begin(), names.end(), cls);
        if (it == names.end())
          throw EngineError(ErrorKind::usage, "'" + item + "': give each control as FILE:CLASS with CLASS 0, 1+, 2+ or 3+");
        const auto k = static_cast<std::size_t>(it - names.begin());
        const auto slide = open_for_scoring(file, args->scoring);
        ScoreOptions o = options;
        apply_stains_and_warn(*slide, args->scoring, o);
        TilePlan plan;
        try {
          plan = plan_tiles(*slide, o);
        } catch (const std::invalid_argument& e) {
          throw EngineError(ErrorKind::usage, file + ": " + e.what());
        }
        std::mutex m;
        std::size_t before = intensities[k].size();
        for_each_tile(o.threads, plan.cores.size(), [&](std::size_t t) {
          std::vector<SlideCell> cells;
          try {
            cells = analyse_tile(*slide, plan, o, plan.cores[t], nullptr);
          } catch (const tiling::SlideError&) {
            return;  // a bad tile costs its cells, not the control
          }
          std::lock_guard lock(m);
          for (const auto& c : cells)
            // Cells in a blurred or folded block would bias the fit (their tile's own judgement).
            if (c.counted && !c.excluded && c.completeness >= o.cells.complete_fraction)
              intensities[k].push_back(c.intensity_od);
        });
        // Tile order varies with scheduling; sort so the fit never depends on it.
        std::sort(intensities[k].begin() + static_cast<std::ptrdiff_t>(before), intensities[k].end());
        used.push_back({{"file", file}, {"class", cls}, {"complete_cells", intensities[k].size() - before}});
      }
      nlohmann::json fits = nlohmann::json::object();
      auto fit = [&](std::size_t lo, std::size_t hi, double& field, const char* name) {
        if (intensities[lo].size() < 20 || intensities[hi].size() < 20) return;
        const Boundary b = separate(intensities[lo], intensities[hi]);
        field = b.threshold;
        fits[name] = {{"value", round_to(b.threshold, 4)}, {"balanced_accuracy", round_to(b.balanced_accuracy, 4)}};
      };
      fit(1, 2, options.cells.moderate_od, "moderate_od");
      fit(2, 3, options.cells.intense_od, "intense_od");
      if (fits.empty())
        throw EngineError(ErrorKind::input,
                           "no threshold could be fitted: give controls of two neighbouring classes (1+ and 2+, or "
                           "2+ and 3+) with at least 20 complete-membrane cells each");
      if (options.cells.moderate_od > options.cells.intense_od)
        throw EngineError(ErrorKind::input, "the controls give a 1+/2+ boundary above the 2+/3+ one; check their classes");
      nlohmann::json config = config_json(options);
      config["calibration"] = {{"controls", used}, {"fitted", fits}, {"version", version_string()}};
      write_file_atomically(args->out, json_text(config, 2) + "\n", args->force);
      std::cout << args->out << ": " << json_text(fits) << "\n";
      return kExitOk;
    };
  });
}

}  // namespace ihc::cli
