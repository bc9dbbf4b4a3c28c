// libFuzzer harness for the CSV readers: engine::parse_csv (validation.hpp) and what reads its
// tables (read_truth, read_results, match_slides, the agreement statistics), csv_field's quoting
// read back by parse_csv, and the batch manifest reader (collect_batch_input, which takes a path:
// the input is written to a scratch file). engine::EngineError(input) is the documented
// refusal of bad input; anything else is a finding.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "ihc/engine/batch_input.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/validation.hpp"

namespace {

using ihc::engine::EngineError;
using ihc::engine::CsvTable;

void check_input_error(const EngineError& e) {
  if (e.kind() != ihc::engine::ErrorKind::input) std::abort();
}

void use_table(const CsvTable& table) {
  if (table.rows.size() != table.lines.size()) std::abort();
  for (const auto& row : table.rows)
    if (row.size() != table.header.size()) std::abort();
  for (const char* name : {"slide", "score", "percent_complete", "status", "path"}) (void)table.column(name);

  // Quoting what was read and reading it back gives the same table (line breaks become spaces).
  std::string again;
  const auto add_row = [&again](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) again += (i ? "," : "") + ihc::engine::csv_field(row[i]);
    again += "\n";
  };
  add_row(table.header);
  for (const auto& row : table.rows) add_row(row);
  try {
    const CsvTable back = ihc::engine::parse_csv(again, "again.csv");
    if (back.rows.size() > table.rows.size()) std::abort();
  } catch (const EngineError& e) {
    check_input_error(e);
  }

  std::vector<ihc::engine::TruthRow> truth;
  std::vector<ihc::engine::ResultRow> results;
  try {
    truth = ihc::engine::read_truth(table);
  } catch (const EngineError& e) {
    check_input_error(e);
  }
  try {
    results = ihc::engine::read_results(table);
  } catch (const EngineError& e) {
    check_input_error(e);
  }
  const auto matching = ihc::engine::match_slides(truth, results);
  std::vector<ihc::engine::ScorePair> pairs;
  std::vector<double> pc_truth, pc_engine;
  for (const auto& m : matching.matched) {
    pairs.push_back({m.truth, m.engine});
    if (m.percent_complete_truth && m.percent_complete_engine) {
      pc_truth.push_back(*m.percent_complete_truth);
      pc_engine.push_back(*m.percent_complete_engine);
    }
  }
  if (!pairs.empty()) (void)ihc::engine::score_agreement(pairs, 20, 1);
  if (!pc_truth.empty()) (void)ihc::engine::bland_altman(pc_truth, pc_engine);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    use_table(ihc::engine::parse_csv(text, "fuzz.csv"));
  } catch (const EngineError& e) {
    check_input_error(e);
  }
  for (const auto& cell : {text.substr(0, 64), text}) (void)ihc::engine::slide_stem(cell), (void)ihc::engine::parse_score_class(cell);

  // The batch manifest: a file whose relative paths are relative to its folder.
  const auto manifest = ihc::fuzz::write_scratch("manifest.csv", data, size);
  try {
    const auto input = ihc::engine::collect_batch_input(manifest);
    if (!input.manifest) std::abort();
    std::vector<std::string> ids;
    for (const auto& item : input.items) {
      if (item.id.empty() || item.id.find('/') != std::string::npos) std::abort();
      ids.push_back(item.id);
    }
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) std::abort();  // ids are unique
  } catch (const EngineError& e) {
    check_input_error(e);
  }
  return 0;
}
