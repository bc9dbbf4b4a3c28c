#pragma once
// `ihcscore batch INPUT --out DIR`: scores many slides, one report per slide plus summary.csv,
// resumable (slides already scored with the same settings are skipped) and interruptible.
//
// INPUT: engine/batch_input.hpp.
//
// Resolution: the manifest's `mpp` for that slide, else the file's own, else --mpp.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ihc/cli/options.hpp"
#include "ihc/engine/batch_input.hpp"
#include "ihc/engine/errors.hpp"
#include "ihc/engine/pipeline.hpp"

namespace ihc::cli {

// The canonical description of everything that decides a slide's result: scoring settings,
// per-slide mpp and roi, the file's path, size and modification time, and the version.
std::string settings_canonical(const ScoringSettings& cli, const BatchItem& item);
// content_hash (FNV-1a, 16 hex digits) of settings_canonical.
std::string settings_hash(const ScoringSettings& cli, const BatchItem& item);

// One row of summary.csv.
struct SummaryRow {
  std::string slide;   // id
  std::string status;  // ok | error
  std::string score, category, guideline, decisive_metric, decisive_percent, percent_complete,
      percent_complete_intense, cells;
  std::string borderline;  // true when the decisive figure's interval crosses its threshold
  std::string warnings;    // how many warnings the report carries (read them there)
  std::string error;       // one line
  std::string elapsed_s;
};
// The columns of summary.csv, in order, and the field each comes from: the one list that the
// CSV, its JSON form and the merging of shard summaries all read.
inline constexpr std::pair<const char*, std::string SummaryRow::*> kSummaryColumns[] = {
    {"slide", &SummaryRow::slide},
    {"status", &SummaryRow::status},
    {"score", &SummaryRow::score},
    {"category", &SummaryRow::category},
    {"guideline", &SummaryRow::guideline},
    {"decisive_metric", &SummaryRow::decisive_metric},
    {"decisive_percent", &SummaryRow::decisive_percent},
    {"percent_complete", &SummaryRow::percent_complete},
    {"percent_complete_intense", &SummaryRow::percent_complete_intense},
    {"cells", &SummaryRow::cells},
    {"borderline", &SummaryRow::borderline},
    {"warnings", &SummaryRow::warnings},
    {"error", &SummaryRow::error},
    {"elapsed_s", &SummaryRow::elapsed_s}};
// Its header line (the names above, joined; the batch tests check the two agree).
inline constexpr const char* kSummaryHeader =
    "slide,status,score,category,guideline,decisive_metric,decisive_percent,percent_complete,"
    "percent_complete_intense,cells,borderline,warnings,error,elapsed_s";

// A row from a slide report (the JSON batch writes): status ok.
SummaryRow summary_row_from_report(const std::string& id, const nlohmann::json& report);
std::string summary_csv(const std::vector<SummaryRow>& rows);

// `--shard K/N`: this process takes the items whose 0-based input index i has i % N == K - 1.
struct Shard {
  int k = 1;  // 1-based
  int n = 1;
  bool takes(std::size_t index) const { return index % static_cast<std::size_t>(n) == static_cast<std::size_t>(k - 1); }
};
// "2/4" -> {2, 4}. Throws EngineError(usage) unless the text is K/N with 1 <= K <= N
// (decimal digits only).
Shard parse_shard(const std::string& text);

struct BatchOptions {
  std::filesystem::path input;
  std::filesystem::path out;
  ScoringSettings scoring;
  bool force = false;
  std::optional<Shard> shard;  // only part of the input; summary-K-of-N.csv instead of summary.csv
  std::filesystem::path report;  // --report DIR: DIR/<id>/ per scored slide (report_folder.hpp), DIR/index.html
};

// Everything a batch decides before it scores: the input, which items this run takes, the
// summary file. Shared by the single-process and the MPI batch.
struct BatchPlan {
  BatchInput input;
  ScoreOptions base_options;           // from the scoring options
  std::vector<std::size_t> selected;   // input indices this run takes, in input order
  std::filesystem::path summary_path;  // DIR/summary.csv or DIR/summary-K-of-N.csv
  std::optional<Shard> shard;
  std::filesystem::path report_dir;    // --report DIR (empty: none); index.html follows the summary
};

// Checks the options (usage errors first), reads the input, selects the shard, creates DIR and
// writes an empty summary (so an unwritable DIR fails early). Throws like run_batch.
BatchPlan prepare_batch(const BatchOptions& options);

// One finished item of a batch.
enum class ItemResult { kScored, kSkipped, kFailed, kInterrupted };
struct ItemOutcome {
  ItemResult result = ItemResult::kFailed;
  SummaryRow row;    // not meaningful when interrupted
  std::string note;  // for the log: "skipped (done)", "3+ (1.2 s)", "error: ..."
};

// An item settled without scoring: an error known from the input (a failed row), or a report
// already in DIR made with `hash` (a skipped row; never with --force). nullopt: it needs scoring.
std::optional<ItemOutcome> settle_without_scoring(const BatchOptions& options, const BatchItem& item,
                                                  const std::string& hash);

// Scores one item and writes DIR/<id>.json (atomically, with slide_id and settings_hash `hash`).
// Per-slide failures are a kFailed outcome; *stop becoming true is kInterrupted (no report left).
// Throws EngineError(output) when the report cannot be written. `detail` (may be empty)
// hears the tile progress.
ItemOutcome score_batch_item(const BatchOptions& options, const ScoreOptions& base_options, const BatchItem& item,
                             const std::string& hash, const std::atomic<bool>* stop,
                             const std::function<void(const std::string&)>& detail = {});

// A scored item, or the error that must end the whole batch (an output that cannot be written,
// a bug): what one slide's work hands back, across a process or an MPI rank.
struct ItemDone {
  std::optional<ItemOutcome> outcome;
  ErrorKind fatal_kind = ErrorKind::internal;
  std::string fatal_message;
};
// score_batch_item with its fatal errors caught into the ItemDone.
ItemDone score_batch_item_guarded(const BatchOptions& options, const ScoreOptions& base_options, const BatchItem& item,
                                  const std::string& hash, const std::atomic<bool>* stop);
// The same in a child process, so a slide that crashes a library (an abort inside OpenSlide or
// GLib, a segfault) costs that slide only: it becomes a failed row naming the signal. The
// parent must not have started threads (fork). Stop signals reach the child as they reach
// the parent.
ItemDone score_batch_item_isolated(const BatchOptions& options, const ScoreOptions& base_options, const BatchItem& item,
                                   const std::string& hash, const std::atomic<bool>* stop);
// An ItemDone as JSON and back (item_done_from_json throws nlohmann::json::exception on a
// malformed one).
nlohmann::json item_done_json(const ItemDone& done);
ItemDone item_done_from_json(const nlohmann::json& j);

// A finished item with its input index.
struct IndexedRow {
  std::size_t index = 0;
  SummaryRow row;
};
// Writes plan.summary_path atomically from `rows` (any order; written in input order). The shard
// summary has two more leading columns, input_index (0-based) and input_count, which --merge uses.
void write_batch_summary(const BatchPlan& plan, std::vector<IndexedRow> rows);

struct BatchCounts {
  int scored = 0, skipped = 0, failed = 0;
  void add(ItemResult r) {
    if (r == ItemResult::kScored) ++scored;
    if (r == ItemResult::kSkipped) ++skipped;
    if (r == ItemResult::kFailed) ++failed;
  }
};
// Prints the closing lines and returns the exit code: kExitInterrupted, kExitPartial (some
// failed) or kExitOk. `finished` = rows in the summary.
int finish_batch(const BatchPlan& plan, const BatchCounts& counts, std::size_t finished, bool interrupted);

// Runs the batch; returns kExitOk, kExitPartial (some slides failed) or kExitInterrupted (when
// *stop became true). Throws EngineError(input) for an unreadable input,
// EngineError(output) when DIR or a file in it cannot be written.
int run_batch(const BatchOptions& options, const std::atomic<bool>* stop);

// `batch --merge DIR... --out OUT`: joins the shard summaries (summary-K-of-N.csv) found in the
// DIRs into OUT/summary.csv, in input order, as one batch over the whole input writes it; copies
// the slide reports into OUT when a DIR is not OUT. Returns kExitOk or kExitPartial (some rows
// are errors). Throws EngineError(input) when no shard summary is found, when the DIRs
// hold summaries of different splits (N), or when some input index is missing or repeated (a
// shard not run or not finished), EngineError(output) when OUT cannot be written.
int merge_batch(const std::vector<std::filesystem::path>& dirs, const std::filesystem::path& out);

}  // namespace ihc::cli
