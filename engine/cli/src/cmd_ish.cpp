// `ihcscore ish`: HER2 dual-probe ISH counts -> ASCO/CAP 2018 group and result (and the 2007
// reading). The rules are in scoring/ish.hpp; this file reads the counts and writes the answer.
//
// Exit codes: 2 for a bad command line and for counts the rule cannot use (fewer than 20 cells,
// no CEP17 signal, negative totals), whether they came from flags or from --counts; 3 when the
// counts file is missing, unreadable or has a bad row; 4 when --json cannot be written.
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "ihc/cli/commands.hpp"
#include "ihc/cli/exit_codes.hpp"
#include "ihc/engine/output_file.hpp"
#include "ihc/engine/report.hpp"
#include "ihc/engine/validation.hpp"
#include "ihc/engine/text.hpp"
#include "ihc/scoring/ish.hpp"

namespace ihc::cli {
namespace {

struct IshArgs {
  std::int64_t her2 = 0, cep17 = 0, cells = 0;
  std::string counts;
  std::string ihc;
  std::string json;
  bool force = false;
};

std::int64_t parse_count(const std::string& text, const std::string& file, std::int64_t line,
                         std::string_view column) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < 0 || v > scoring::kIshMaxCount)
    throw EngineError(ErrorKind::input, file + ": line " + std::to_string(line) + ": " + std::string(column) + " \"" +
                                       text + "\" is not a whole number of signals (0 or more)");
  return v;
}

// One row per counted cell: her2,cep17 (any case), optional cell id and other columns ignored.
scoring::IshCounts read_counts(const std::string& file) {
  const CsvTable csv = read_csv(file);
  const auto her2_col = csv.require_column("her2");
  const auto cep17_col = csv.require_column("cep17");
  scoring::IshCounts c;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    c.her2_signals += parse_count(csv.rows[r][her2_col], file, csv.lines[r], "her2");
    c.cep17_signals += parse_count(csv.rows[r][cep17_col], file, csv.lines[r], "cep17");
    ++c.cells;
    if (c.her2_signals > scoring::kIshMaxCount || c.cep17_signals > scoring::kIshMaxCount)
      throw EngineError(ErrorKind::input, file + ": line " + std::to_string(csv.lines[r]) + ": signal totals are implausibly large");
  }
  return c;
}

std::string fixed3(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string reading_2007(const scoring::IshAssessment& a) {
  std::string s(to_string(a.result_2007));
  s += a.result_2007 == scoring::IshResult::Positive   ? " (ratio > 2.2)"
       : a.result_2007 == scoring::IshResult::Negative ? " (ratio < 1.8)"
                                                       : " (ratio 1.8-2.2)";
  s += "; copy number alone: ";
  s += to_string(a.result_2007_copy_number);
  s += a.result_2007_copy_number == scoring::IshResult::Positive   ? " (mean HER2 > 6)"
       : a.result_2007_copy_number == scoring::IshResult::Negative ? " (mean HER2 < 4)"
                                                                   : " (mean HER2 4-6)";
  return s;
}

nlohmann::json ish_json(const scoring::IshAssessment& a) {
  nlohmann::json j;
  j["guideline"] = "asco-cap-2018";
  j["ratio"] = a.ratio;
  j["mean_her2_per_cell"] = a.mean_her2_per_cell;
  j["mean_cep17_per_cell"] = a.mean_cep17_per_cell;
  j["cells"] = a.counts.cells;
  j["her2_signals"] = a.counts.her2_signals;
  j["cep17_signals"] = a.counts.cep17_signals;
  j["group"] = a.group;
  j["result_2018"] = std::string(to_string(a.result_2018));
  j["comment"] = a.comment;
  if (a.ihc) j["ihc"] = std::string(scoring::to_string(*a.ihc));
  j["result_2007"] = std::string(to_string(a.result_2007));
  j["result_2007_copy_number"] = std::string(to_string(a.result_2007_copy_number));
  j["version"] = version_string();
  return j;
}

std::string ish_summary(const scoring::IshAssessment& a, const std::string& source) {
  std::ostringstream o;
  o << "ISH " << source << ": " << a.counts.cells << " cells, " << a.counts.her2_signals << " HER2 and "
    << a.counts.cep17_signals << " CEP17 signals\n"
    << "  HER2/CEP17 ratio:        " << fixed3(a.ratio) << "\n"
    << "  mean HER2 per cell:      " << fixed3(a.mean_her2_per_cell) << "\n"
    << "  mean CEP17 per cell:     " << fixed3(a.mean_cep17_per_cell) << "\n"
    << "  ASCO/CAP 2018 group:     " << a.group << "\n"
    << "  concurrent IHC:          " << (a.ihc ? std::string(scoring::to_string(*a.ihc)) : "not given") << "\n"
    << "  result (2018):           " << to_string(a.result_2018) << "\n"
    << "  comment:                 " << a.comment << "\n"
    << "  2007 reading:            " << reading_2007(a) << "\n";
  return o.str();
}

int run_ish(const IshArgs& args, bool have_totals, bool have_any_total) {
  std::optional<scoring::SlideScore> ihc;
  if (!args.ihc.empty()) {
    ihc = scoring::parse_ihc_score(args.ihc);
    if (!ihc) throw EngineError(ErrorKind::usage, "--ihc: \"" + args.ihc + "\" is not 0, 1+, 2+ or 3+");
  }
  if (args.counts.empty() && !have_totals)
    throw EngineError(ErrorKind::usage, std::string("ish: give --her2, --cep17 and --cells") +
                                       (have_any_total ? " together" : "") + ", or --counts FILE.csv");
  check_distinct_outputs({{"--counts", args.counts}, {"--ihc", args.ihc}, {"--json", args.json}});
  if (!args.json.empty()) check_output_path(args.json, args.force);

  scoring::IshCounts counts;
  std::string source = "totals";
  if (!args.counts.empty()) {
    counts = read_counts(args.counts);
    source = args.counts;
  } else {
    counts = {args.her2, args.cep17, args.cells};
  }
  scoring::IshAssessment a;
  try {
    a = scoring::assess_ish(counts, ihc);
  } catch (const std::invalid_argument& e) {
    throw EngineError(ErrorKind::usage, (args.counts.empty() ? std::string("ish") : args.counts) + ": " + e.what());
  }
  if (!args.json.empty()) write_file_atomically(args.json, json_text(ish_json(a), 2) + "\n", args.force);
  std::cout << ish_summary(a, source);
  if (!args.json.empty()) std::cout << "  report: " << args.json << "\n";
  return kExitOk;
}

}  // namespace

void add_ish_command(CLI::App& app, CommandRunner& run) {
  auto args = std::make_shared<IshArgs>();
  CLI::App* cmd = app.add_subcommand(
      "ish", "HER2 dual-probe ISH counts -> ASCO/CAP 2018 group 1-5 and result (and the 2007 reading)");
  cmd->footer(
      "Give the totals (--her2, --cep17, --cells) or --counts FILE.csv with one row per cell and columns "
      "her2,cep17 (optional cell id). At least 20 cells. Exit codes: 2 bad option, or counts the rule cannot "
      "use (fewer than 20 cells, no CEP17 signal); 3 counts file missing or with a bad row; 4 output not "
      "written.\n");
  auto* her2 = cmd->add_option("--her2", args->her2, "Total HER2 signals counted");
  auto* cep17 = cmd->add_option("--cep17", args->cep17, "Total CEP17 signals counted");
  auto* cells = cmd->add_option("--cells", args->cells, "Number of cells counted (at least 20)");
  auto* counts = cmd->add_option("--counts", args->counts, "CSV, one row per cell: her2,cep17 (optional cell column)");
  counts->excludes(her2)->excludes(cep17)->excludes(cells);
  cmd->add_option("--ihc", args->ihc, "Concurrent IHC score on the same tissue: 0, 1+, 2+ or 3+");
  cmd->add_option("--json", args->json, "Write the result as JSON to this file");
  cmd->add_flag("--force", args->force, "Replace output files that already exist");
  cmd->callback([args, her2, cep17, cells, &run] {
    const bool all = her2->count() > 0 && cep17->count() > 0 && cells->count() > 0;
    const bool any = her2->count() > 0 || cep17->count() > 0 || cells->count() > 0;
    run = [args, all, any]() -> int { return run_ish(*args, all, any); };
  });
}

}  // namespace ihc::cli
