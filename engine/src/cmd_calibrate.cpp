// ihcscore calibrate CONTROL:CLASS ... --out CONFIG.json: fits the membrane intensity thresholds
// (moderate_od between 1+ and 2+, intense_od between 2+ and 3+) from control slides or images of
// known class (cell lines, or pathologist-scored regions), and writes a configuration that
// `score --config` uses. Each boundary is the DAB intensity that best separates the complete-
// membrane cells of the two classes (highest balanced accuracy); a boundary whose two classes
// were not both given keeps its current value.
#include <algorithm>
#include <array>
#include <iostream>
#include <mutex>

#include "ihc/engine/cli_common.hpp"
#include "ihc/engine/commands.hpp"
#include "ihc/engine/config.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/report.hpp"

namespace ihc::engine {
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

}  // namespace

void add_calibrate_command(CLI::App& app, CommandRunner& run) {
  struct Args {
    std::vector<std::string> controls;
    ScoringCli scoring;
    std::string out;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Fit the intensity thresholds from control slides of known class; write a --config file");
  cmd->add_option("CONTROLS", args->controls, "Controls as FILE:CLASS, CLASS one of 0, 1+, 2+, 3+")->required();
  cmd->add_option("--out", args->out, "Configuration file to write (JSON)")->required();
  add_scoring_options(*cmd, args->scoring);
  cmd->add_flag("--force", args->force, "Replace the output if it exists");
  cmd->callback([args, &run] {
    run = [args]() -> int {
      ScoreOptions options = make_score_options(args->scoring);
      check_output_path(args->out, args->force);
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
          throw CommandError(kExitUsage, "'" + item + "': give each control as FILE:CLASS with CLASS 0, 1+, 2+ or 3+");
        const auto k = static_cast<std::size_t>(it - names.begin());
        const auto slide = open_for_scoring(file, args->scoring);
        ScoreOptions o = options;
        apply_stain_choice(*slide, args->scoring, o);
        TilePlan plan;
        try {
          plan = plan_tiles(*slide, o);
        } catch (const std::invalid_argument& e) {
          throw CommandError(kExitUsage, file + ": " + e.what());
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
        throw CommandError(kExitInput,
                           "no threshold could be fitted: give controls of two neighbouring classes (1+ and 2+, or "
                           "2+ and 3+) with at least 20 complete-membrane cells each");
      if (options.cells.moderate_od > options.cells.intense_od)
        throw CommandError(kExitInput, "the controls give a 1+/2+ boundary above the 2+/3+ one; check their classes");
      nlohmann::json config = config_json(options);
      config["calibration"] = {{"controls", used}, {"fitted", fits}, {"version", version_string()}};
      write_file_atomically(args->out, config.dump(2) + "\n", args->force);
      std::cout << args->out << ": " << fits.dump() << "\n";
      return kExitOk;
    };
  });
}

}  // namespace ihc::engine
